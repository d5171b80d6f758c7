// Command-line parsing for mtwardenctl: a table of commands, each with its
// flags and a builder that maps the scanned arguments to one API request.
#include "ctl/args.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <map>
#include <span>

#include "base/url.h"
#include "ctl/values.h"

namespace mtw::ctl {
namespace json = boost::json;
using base::Errc;
using base::fail;
using base::Result;

namespace {

struct FlagSpec {
  std::string_view name;  // "--rate-up"
  bool takes_value = true;
  bool repeatable = false;
};

struct Scanned {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>, std::less<>> values;  // flag -> values
  bool help = false;

  const std::string* one(std::string_view flag) const {
    auto it = values.find(flag);
    return it == values.end() ? nullptr : &it->second.front();
  }
  bool has(std::string_view flag) const { return values.contains(flag); }
};

struct Globals {
  std::optional<std::string> socket, url, token;
  bool json = false;
};

// Handles a global option at args[i] (advancing i past its value). Returns
// false when args[i] is not a global option.
Result<bool> take_global(std::string_view name, std::optional<std::string> inline_value,
                         std::span<const std::string> args, std::size_t& i, Globals& g) {
  std::optional<std::string>* slot = nullptr;
  if (name == "--json") {
    if (inline_value) return fail(Errc::kBadInput, "--json takes no value");
    g.json = true;
    return true;
  }
  if (name == "--socket") slot = &g.socket;
  if (name == "--url") slot = &g.url;
  if (name == "--token") slot = &g.token;
  if (slot == nullptr) return false;
  if (inline_value) {
    *slot = std::move(*inline_value);
  } else if (i + 1 < args.size()) {
    *slot = args[++i];
  } else {
    return fail(Errc::kBadInput, std::string(name) + " needs a value");
  }
  if (slot->value().empty()) return fail(Errc::kBadInput, std::string(name) + " must not be empty");
  return true;
}

std::string see_help(std::string_view topic) {
  return " (see mtwardenctl " + std::string(topic) + (topic.empty() ? "" : " ") + "--help)";
}

// Splits flags from positional arguments. Global options are accepted
// anywhere; "--" ends the options; "--flag=value" and "--flag value" both work.
Result<Scanned> scan(std::span<const std::string> args, std::span<const FlagSpec> spec, Globals& g,
                     std::string_view topic) {
  Scanned out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      out.positional.insert(out.positional.end(), args.begin() + i + 1, args.end());
      break;
    }
    if (a.size() < 2 || a[0] != '-') {
      out.positional.push_back(a);
      continue;
    }
    if (a == "-h" || a == "--help") {
      out.help = true;
      continue;
    }
    std::string name = a;
    std::optional<std::string> inline_value;
    if (auto eq = a.find('='); eq != std::string::npos && a.starts_with("--")) {
      name = a.substr(0, eq);
      inline_value = a.substr(eq + 1);
    }
    auto global = take_global(name, inline_value, args, i, g);
    if (!global) return tl::unexpected(global.error());
    if (*global) continue;
    auto it =
        std::find_if(spec.begin(), spec.end(), [&](const FlagSpec& f) { return f.name == name; });
    if (it == spec.end()) {
      return fail(Errc::kBadInput, "unknown option " + name +
                                       (topic.empty() ? "" : " for " + std::string(topic)) +
                                       see_help(topic));
    }
    std::string value;
    if (it->takes_value) {
      if (inline_value) {
        value = std::move(*inline_value);
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return fail(Errc::kBadInput, name + " needs a value" + see_help(topic));
      }
    } else if (inline_value) {
      return fail(Errc::kBadInput, name + " takes no value");
    }
    auto& slot = out.values[name];
    if (!slot.empty() && !it->repeatable) return fail(Errc::kBadInput, name + " given twice");
    slot.push_back(std::move(value));
  }
  return out;
}

// The "limits" object from the limit flags present; empty when none is.
Result<json::object> limits_from(const Scanned& s) {
  json::object limits;
  for (const auto& lf : limit_flags()) {
    const std::string* v = s.one(lf.flag);
    if (v == nullptr) continue;
    if (*v == "default") {
      limits[lf.key] = nullptr;
      continue;
    }
    auto j = lf.parse(lf.flag, *v);
    if (!j) return tl::unexpected(j.error());
    limits[lf.key] = std::move(*j);
  }
  return limits;
}

// ------------------------------------------------------------------ commands

using Builder = Result<Request> (*)(const Scanned&);

std::string user_path(const Scanned& s, std::string_view suffix = "") {
  return "/v1/users/" + base::percent_encode(s.positional.at(0)) + std::string(suffix);
}

Request simple(std::string method, std::string target, Output out, std::string done = "") {
  Request r;
  r.method = std::move(method);
  r.target = std::move(target);
  r.output = out;
  r.done_message = std::move(done);
  return r;
}

// --upstreams and --upstream-password-file into the body. The password is
// read from a file so that it never shows on a command line (ps, history).
Result<void> upstream_fields(const Scanned& s, json::object& body) {
  if (auto* u = s.one("--upstreams")) {
    auto v = parse_upstreams(*u);
    if (!v) return tl::unexpected(v.error());
    body["upstreams"] = std::move(*v);
  }
  if (auto* f = s.one("--upstream-password-file")) {
    auto pw = read_password_file(*f);
    if (!pw) return tl::unexpected(pw.error());
    body["upstream_password"] = std::move(*pw);
  }
  return {};
}

Result<Request> build_add(const Scanned& s) {
  json::object body;
  body["name"] = s.positional.at(0);
  if (s.has("--secret")) {
    json::array secrets;
    for (const auto& sec : s.values.at("--secret")) secrets.emplace_back(sec);
    body["secrets"] = std::move(secrets);
  }
  if (auto* d = s.one("--domain")) body["tls_domain"] = *d;
  if (s.has("--disabled")) body["enabled"] = false;
  if (auto* e = s.one("--expires")) {
    auto v = parse_expires(*e);
    if (!v) return tl::unexpected(v.error());
    body["expires_at"] = std::move(*v);
  }
  if (auto* c = s.one("--comment")) body["comment"] = *c;
  if (auto* t = s.one("--ad-tag")) body["ad_tag"] = *t;
  if (auto r = upstream_fields(s, body); !r) return tl::unexpected(r.error());
  auto limits = limits_from(s);
  if (!limits) return tl::unexpected(limits.error());
  if (!limits->empty()) body["limits"] = std::move(*limits);
  Request r = simple("POST", "/v1/users", Output::kUser);
  r.body = std::move(body);
  return r;
}

Result<Request> build_limit(const Scanned& s) {
  json::object body;
  if (auto* e = s.one("--expires")) {
    auto v = parse_expires(*e);
    if (!v) return tl::unexpected(v.error());
    body["expires_at"] = std::move(*v);
  }
  // "none": remove the tag (the server checks the hex).
  if (auto* t = s.one("--ad-tag")) body["ad_tag"] = *t == "none" ? json::value() : json::value(*t);
  auto limits = limits_from(s);
  if (!limits) return tl::unexpected(limits.error());
  if (!limits->empty()) body["limits"] = std::move(*limits);
  if (body.empty()) {
    return fail(Errc::kBadInput, "users limit: nothing to change" + see_help("users limit"));
  }
  Request r = simple("PATCH", user_path(s), Output::kUser);
  r.body = std::move(body);
  return r;
}

Result<Request> build_set(const Scanned& s) {
  json::object body;
  if (auto r = upstream_fields(s, body); !r) return tl::unexpected(r.error());
  // The one limit flag `users set` takes (--bandwidth-weight).
  auto limits = limits_from(s);
  if (!limits) return tl::unexpected(limits.error());
  if (!limits->empty()) body["limits"] = std::move(*limits);
  if (body.empty())
    return fail(Errc::kBadInput, "users set: nothing to change" + see_help("users set"));
  Request r = simple("PATCH", user_path(s), Output::kUser);
  r.body = std::move(body);
  return r;
}

Result<Request> build_rotate(const Scanned& s) {
  json::object body;
  if (auto* sec = s.one("--secret")) body["secret"] = *sec;
  if (auto* g = s.one("--grace")) {
    auto v = parse_uint("--grace", *g, 0xffffffffu);
    if (!v) return tl::unexpected(v.error());
    body["grace_s"] = *v;
  }
  Request r = simple("POST", user_path(s, "/rotate"), Output::kUser);
  r.body = std::move(body);
  return r;
}

Result<Request> build_qr(const Scanned& s) {
  const std::string* png = s.one("--png");
  const std::string* svg = s.one("--svg");
  if ((png == nullptr) == (svg == nullptr)) {
    return fail(Errc::kBadInput,
                "qr: give exactly one of --png FILE or --svg FILE" + see_help("qr"));
  }
  std::string target = user_path(s, "/qr?format=") + (png ? "png" : "svg");
  if (auto* idx = s.one("--index")) {
    auto v = parse_uint("--index", *idx, 1u << 20);
    if (!v) return tl::unexpected(v.error());
    target += "&index=" + std::to_string(*v);
  }
  Request r = simple("GET", std::move(target), Output::kQr);
  r.file = png ? *png : *svg;
  if (r.file.empty()) return fail(Errc::kBadInput, "qr: the file name is empty");
  return r;
}

Result<Request> build_usage(const Scanned& s) {
  std::string query;
  if (auto* by = s.one("--by")) {
    if (*by != "day" && *by != "month") {
      return fail(Errc::kBadInput, "--by: expected day or month, got \"" + *by + "\"");
    }
    query += "&by=" + *by;
  }
  bool monthly = s.one("--by") != nullptr && *s.one("--by") == "month";
  for (std::string_view flag : {"--from", "--to"}) {
    const std::string* d = s.one(flag);
    if (d == nullptr) continue;
    // With --by month a month alone is enough: YYYY-MM.
    bool month_only = monthly && d->size() == 7 && valid_date(*d + "-01");
    if (!month_only && !valid_date(*d)) {
      return fail(Errc::kBadInput, std::string(flag) + ": expected a date YYYY-MM-DD" +
                                       (monthly ? " or YYYY-MM" : "") + ", got \"" + *d + "\"");
    }
    query += "&" + std::string(flag.substr(2)) + "=" + *d;
  }
  if (!query.empty()) query[0] = '?';
  return simple("GET", user_path(s, "/usage") + query, Output::kUsage);
}

Result<Request> build_events(const Scanned& s) {
  std::string query;
  for (std::string_view flag : {"--after", "--limit"}) {
    if (auto* n = s.one(flag)) {
      auto v = parse_uint(flag, *n, flag == "--after" ? UINT64_MAX >> 1 : 100000);
      if (!v) return tl::unexpected(v.error());
      query += "&" + std::string(flag.substr(2)) + "=" + std::to_string(*v);
    }
  }
  if (!query.empty()) query[0] = '?';
  return simple("GET", "/v1/events" + query, Output::kEvents);
}

// Flagless commands on one user: a fixed method and path suffix.
struct UserAction {
  std::string_view topic, method, suffix;
  Output output;
  std::string_view done_prefix;  // kDone: message before the name
};
constexpr UserAction kUserActions[] = {
    {"users show", "GET", "", Output::kUser, ""},
    {"users rm", "DELETE", "", Output::kDone, "deleted user "},
    {"users enable", "POST", "/enable", Output::kUser, ""},
    {"users disable", "POST", "/disable", Output::kUser, ""},
    {"users reset", "POST", "/reset", Output::kDone, "reset the period usage of "},
    {"link", "GET", "/links", Output::kLinks, ""},
    {"users ips", "GET", "/ips", Output::kIps, ""},
};

Request build_user_action(const UserAction& a, const std::string& name) {
  return simple(std::string(a.method),
                "/v1/users/" + base::percent_encode(name) + std::string(a.suffix), a.output,
                a.done_prefix.empty() ? "" : std::string(a.done_prefix) + name);
}

Result<Request> build_list(const Scanned&) { return simple("GET", "/v1/users", Output::kUserList); }
Result<Request> build_status(const Scanned&) {
  return simple("GET", "/v1/status", Output::kStatus);
}
Result<Request> build_mask(const Scanned&) {
  return simple("GET", "/v1/mask-profiles", Output::kMask);
}
Result<Request> build_fleet(const Scanned&) { return simple("GET", "/v1/fleet", Output::kFleet); }
Result<Request> build_upstreams(const Scanned&) {
  return simple("GET", "/v1/upstreams", Output::kUpstreams);
}
Result<Request> build_reload(const Scanned&) {
  return simple("POST", "/v1/reload", Output::kDone, "configuration reloaded");
}
Result<Request> build_token_rotate(const Scanned&) {
  return simple("POST", "/v1/token/rotate", Output::kToken);
}

constexpr FlagSpec kAddFlags[] = {{"--secret", true, true},
                                  {"--domain"},
                                  {"--disabled", false},
                                  {"--expires"},
                                  {"--comment"},
                                  {"--ad-tag"},
                                  {"--upstreams"},
                                  {"--upstream-password-file"},
                                  {"--rate-up"},
                                  {"--rate-down"},
                                  {"--quota"},
                                  {"--period"},
                                  {"--anchor-day"},
                                  {"--throttle"},
                                  {"--warn-percent"},
                                  {"--max-connections"},
                                  {"--max-ips"},
                                  {"--on-demand"},
                                  {"--idle-teardown"},
                                  {"--bandwidth-weight"}};
constexpr FlagSpec kLimitSpec[] = {
    {"--rate-up"},    {"--rate-down"}, {"--quota"},         {"--period"},
    {"--anchor-day"}, {"--throttle"},  {"--warn-percent"},  {"--max-connections"},
    {"--max-ips"},    {"--on-demand"}, {"--idle-teardown"}, {"--bandwidth-weight"},
    {"--expires"},    {"--ad-tag"}};
constexpr FlagSpec kSetFlags[] = {
    {"--upstreams"}, {"--upstream-password-file"}, {"--bandwidth-weight"}};
constexpr FlagSpec kRotateFlags[] = {{"--secret"}, {"--grace"}};
constexpr FlagSpec kQrFlags[] = {{"--png"}, {"--svg"}, {"--index"}};
constexpr FlagSpec kUsageFlags[] = {{"--by"}, {"--from"}, {"--to"}};
constexpr FlagSpec kEventsFlags[] = {{"--after"}, {"--limit"}};

struct Command {
  std::string_view topic;  // "users add"
  std::span<const FlagSpec> flags;
  bool takes_name;  // exactly one positional NAME, else none
  Builder build;
};
const Command kCommands[] = {
    {"users add", kAddFlags, true, build_add},
    {"users list", {}, false, build_list},
    {"users limit", kLimitSpec, true, build_limit},
    {"users set", kSetFlags, true, build_set},
    {"users rotate", kRotateFlags, true, build_rotate},
    {"qr", kQrFlags, true, build_qr},
    {"status", {}, false, build_status},
    {"mask", {}, false, build_mask},
    {"fleet", {}, false, build_fleet},
    {"upstreams", {}, false, build_upstreams},
    {"usage", kUsageFlags, true, build_usage},
    {"reload", {}, false, build_reload},
    {"events", kEventsFlags, false, build_events},
    {"token rotate", {}, false, build_token_rotate},
};

const Command* find_command(std::string_view topic) {
  for (const auto& c : kCommands) {
    if (c.topic == topic) return &c;
  }
  return nullptr;
}

bool is_group(std::string_view word) { return word == "users" || word == "token"; }

Result<Endpoint> make_endpoint(const Globals& g, const Env& env) {
  Endpoint ep;
  ep.token = g.token.value_or(env.token);
  if (g.url && g.socket) return fail(Errc::kBadInput, "give --socket or --url, not both");
  if (!g.url) {
    ep.socket_path =
        g.socket.value_or(env.socket.empty() ? std::string(kDefaultSocket) : env.socket);
    return ep;
  }
  std::string_view u = *g.url;
  if (!u.starts_with("http://")) {
    return fail(Errc::kBadInput, "--url: expected http://HOST:PORT, got \"" + *g.url + "\"");
  }
  u.remove_prefix(7);
  while (u.ends_with('/')) u.remove_suffix(1);
  std::size_t colon = u.rfind(':');
  std::string_view host = colon == std::string_view::npos ? u : u.substr(0, colon);
  std::string_view port = colon == std::string_view::npos ? "" : u.substr(colon + 1);
  if (host.starts_with('[') && host.ends_with(']')) host = host.substr(1, host.size() - 2);
  if (host.empty() || port.empty() || !parse_uint("--url port", port, 65535) ||
      host.find_first_of("/?#[]") != std::string_view::npos) {
    return fail(Errc::kBadInput, "--url: expected http://HOST:PORT, got \"" + *g.url + "\"");
  }
  ep.tcp = true;
  ep.host = host;
  ep.port = port;
  return ep;
}

// Leading global options, up to the command word; returns its index, or
// help text via `help`.
Result<std::size_t> leading_globals(std::span<const std::string> args, Globals& g,
                                    std::string& help) {
  std::size_t i = 0;
  for (; i < args.size() && args[i].starts_with("-") && args[i] != "--"; ++i) {
    if (args[i] == "-h" || args[i] == "--help") {
      help = help_text("");
      return i;
    }
    std::string name = args[i];
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name.resize(eq);
    }
    auto global = take_global(name, inline_value, args, i, g);
    if (!global) return tl::unexpected(global.error());
    if (!*global) return fail(Errc::kBadInput, "unknown option " + name + see_help(""));
  }
  if (i < args.size() && args[i] == "--") ++i;
  return i;
}

// The command's request from its arguments (after the command words).
Result<Request> build_request(std::string_view topic, std::span<const std::string> args, Globals& g,
                              std::string& help) {
  const Command* cmd = find_command(topic);
  const UserAction* action = nullptr;
  for (const auto& a : kUserActions) action = a.topic == topic ? &a : action;
  if (cmd == nullptr && action == nullptr) {
    return fail(Errc::kBadInput, "unknown command \"" + std::string(topic) + "\"" + see_help(""));
  }
  auto s = scan(args, cmd ? cmd->flags : std::span<const FlagSpec>{}, g, topic);
  if (!s) return tl::unexpected(s.error());
  if (s->help) {
    help = help_text(topic);
    return Request{};
  }
  std::size_t want = action != nullptr || cmd->takes_name ? 1 : 0;
  std::string t(topic);
  if (s->positional.size() < want)
    return fail(Errc::kBadInput, t + ": missing NAME" + see_help(topic));
  if (s->positional.size() > want) {
    return fail(Errc::kBadInput,
                t + ": unexpected argument \"" + s->positional[want] + "\"" + see_help(topic));
  }
  if (want == 1 && s->positional[0].empty()) return fail(Errc::kBadInput, t + ": empty NAME");
  if (action != nullptr) return build_user_action(*action, s->positional[0]);
  return cmd->build(*s);
}

}  // namespace

Result<Parsed> parse_command_line(const std::vector<std::string>& args, const Env& env) {
  Globals g;
  std::span<const std::string> rest(args);
  std::string help;
  auto first = leading_globals(rest, g, help);
  if (!first) return tl::unexpected(first.error());
  if (!help.empty()) return Parsed{std::nullopt, help};
  std::size_t i = *first;
  if (i == rest.size()) return fail(Errc::kBadInput, "no command given" + see_help(""));
  std::string topic = rest[i++];
  if (topic == "help") {
    std::string t;
    for (; i < rest.size(); ++i) t += (t.empty() ? "" : " ") + rest[i];
    std::string text = help_text(t);
    if (text.empty()) return fail(Errc::kBadInput, "no help for \"" + t + "\"" + see_help(""));
    return Parsed{std::nullopt, text};
  }
  if (is_group(topic)) {
    if (i == rest.size())
      return fail(Errc::kBadInput, topic + " needs a subcommand" + see_help(topic));
    if (rest[i] == "-h" || rest[i] == "--help") return Parsed{std::nullopt, help_text(topic)};
    topic += " " + rest[i++];
  }
  auto req = build_request(topic, rest.subspan(i), g, help);
  if (!req) return tl::unexpected(req.error());
  if (!help.empty()) return Parsed{std::nullopt, help};
  auto ep = make_endpoint(g, env);
  if (!ep) return tl::unexpected(ep.error());
  return Parsed{Invocation{std::move(*ep), g.json, std::move(*req)}, ""};
}

}  // namespace mtw::ctl
