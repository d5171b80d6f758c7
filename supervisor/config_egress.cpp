// [[upstream]], [egress] and the users' upstream keys: reading, the checks
// across them, and resolving one user's egress (proto/egress.h) with its
// credentials, which the supervisor hands to that user's worker.
#include <arpa/inet.h>

#include <array>
#include <set>

#include "netns/names.h"
#include "supervisor/config.h"
#include "supervisor/config_reader.h"

namespace mtw::supervisor {
namespace {

// 1..255 bytes: RFC 1929's field limits (SOCKS4 user ids share them here).
bool credential_ok(const std::string& v) { return !v.empty() && v.size() <= 255; }

}  // namespace

namespace detail {
namespace {

constexpr std::uint32_t kMaxMs = 24 * 3'600'000;

bool ip_literal(const std::string& host) {
  std::array<unsigned char, 16> buf{};
  return ::inet_pton(AF_INET, host.c_str(), buf.data()) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buf.data()) == 1;
}

std::optional<std::vector<std::string>> name_list(TableReader& r, std::string_view key) {
  const toml::node* n = r.node(key);
  if (!n) return std::nullopt;
  std::vector<std::string> out;
  const auto* arr = n->as_array();
  if (!arr) {
    r.error(*n, r.section() + "." + std::string(key) + " must be a list of upstream names");
    return std::nullopt;
  }
  for (const toml::node& e : *arr) {
    const auto* s = e.as_string();
    if (!s) {
      r.error(e, r.section() + "." + std::string(key) + " entries must be strings");
      return std::nullopt;
    }
    out.push_back(s->get());
  }
  return out;
}

// `source`: one address or a list of at most one per family; `interface`:
// a name whose addresses are taken when the cell's SNAT is set.
template <class Bad>
void read_source(TableReader& r, UpstreamConfig& u, const std::string& label, Bad&& bad) {
  const bool direct = u.type == proto::UpstreamType::kDirect;
  if (const toml::node* n = r.node("source")) {
    std::vector<std::pair<const toml::node*, std::string>> addrs;
    if (const auto* s = n->as_string()) {
      addrs.emplace_back(n, s->get());
    } else if (const auto* arr = n->as_array(); arr && !arr->empty() && arr->size() <= 2) {
      for (const toml::node& e : *arr) {
        if (const auto* s = e.as_string())
          addrs.emplace_back(&e, s->get());
        else
          bad("source", label + ": source entries must be strings");
      }
    } else {
      bad("source", label + ": source must be an address or a list of one IPv4 and one IPv6");
    }
    if (!direct) bad("source", label + ": source is only for type = \"direct\"");
    for (const auto& [node, text] : addrs) {
      std::array<unsigned char, 16> buf{};
      const bool v4 = ::inet_pton(AF_INET, text.c_str(), buf.data()) == 1;
      const bool v6 = !v4 && ::inet_pton(AF_INET6, text.c_str(), buf.data()) == 1;
      std::string& slot = v4 ? u.source4 : u.source6;
      if (!v4 && !v6) {
        r.error(*node, label + ": source \"" + text + "\" is not an IP address");
      } else if (!slot.empty()) {
        r.error(*node, label + ": source names two IPv" + (v4 ? "4" : "6") + " addresses");
      } else {
        slot = text;
      }
    }
  }
  if (auto v = r.string("interface")) {
    if (!direct)
      bad("interface", label + ": interface is only for type = \"direct\"");
    else if (!netns::valid_ifname(*v))
      bad("interface", label + ": interface \"" + *v + "\" is not an interface name");
    else if (r.table().get("source"))
      bad("interface", label + ": give source or interface, not both");
    else
      u.interface = *v;
  }
}

}  // namespace

void read_upstream(TableReader r, std::vector<UpstreamConfig>& out) {
  UpstreamConfig u;
  u.pos = r.diag().pos(r.table().source());
  bool ok = true;
  auto bad = [&](std::string_view key, const std::string& why) {
    ok = false;
    if (const toml::node* n = r.table().get(key))
      r.error(*n, why);
    else
      r.diag().error(u.pos, why);
  };
  if (auto v = r.string("name")) {
    if (valid_user_name(*v))
      u.name = *v;
    else
      bad("name", "upstream.name \"" + *v + "\" must be " + std::string(kUserNameRule));
  } else {
    bad("name", "upstream needs name = \"...\"");
  }
  const std::string label = "upstream \"" + u.name + "\"";
  if (auto v = r.string("type")) {
    if (*v == "direct")
      u.type = proto::UpstreamType::kDirect;
    else if (*v == "socks4")
      u.type = proto::UpstreamType::kSocks4;
    else if (*v == "socks5")
      u.type = proto::UpstreamType::kSocks5;
    else
      bad("type", label + ": type must be direct, socks4 or socks5");
  } else {
    bad("type", label + " needs type = \"direct\", \"socks4\" or \"socks5\"");
  }
  const bool socks = u.type != proto::UpstreamType::kDirect;
  if (r.table().get("address")) {
    auto e = r.endpoint("address");
    if (!e) {
      ok = false;
    } else if (!socks) {
      bad("address", label + ": a direct upstream has no address");
    } else if (!ip_literal(e->host)) {
      // A name would be resolved inside the cell at every connect, where
      // the proxy is the only way out.
      bad("address", label +
                         ": address must be an IP address and port, e.g. "
                         "\"198.51.100.7:1080\" or \"[2001:db8::7]:1080\"");
    } else {
      u.address = *e;
    }
  } else if (socks) {
    bad("address", label + " needs address = \"IP:PORT\"");
  }
  read_source(r, u, label, bad);
  if (auto v = r.number<std::uint32_t>("weight", 1, 1'000)) u.weight = *v;
  if (auto v = r.string("auth")) {
    if (*v == "none")
      u.auth = UpstreamAuth::kNone;
    else if (*v == "fixed")
      u.auth = UpstreamAuth::kFixed;
    else if (*v == "user-name")
      u.auth = UpstreamAuth::kUserName;
    else if (*v == "user-secret")
      u.auth = UpstreamAuth::kUserSecret;
    else
      bad("auth", label + ": auth must be none, fixed, user-name or user-secret");
  }
  if (auto v = r.string("username")) u.username = *v;
  if (auto v = r.string("password")) u.password = *v;
  r.finish();
  const bool has_user = r.table().get("username") != nullptr;
  const bool has_pass = r.table().get("password") != nullptr;
  if (!socks && r.table().get("auth") && u.auth != UpstreamAuth::kNone)
    bad("auth", label + ": a direct upstream does not authenticate");
  if (u.auth == UpstreamAuth::kFixed) {
    if (!has_user || !credential_ok(u.username))
      bad("username", label + ": auth = \"fixed\" needs username (1..255 bytes)");
    if (u.type == proto::UpstreamType::kSocks5 && (!has_pass || !credential_ok(u.password)))
      bad("password", label + ": auth = \"fixed\" on socks5 needs password (1..255 bytes)");
    if (u.type == proto::UpstreamType::kSocks4 && has_pass)
      bad("password", label + ": socks4 has no password (the username is the user id)");
  } else {
    if (has_user) bad("username", label + ": username is only used with auth = \"fixed\"");
    if (has_pass) bad("password", label + ": password is only used with auth = \"fixed\"");
  }
  if (u.auth == UpstreamAuth::kUserSecret && u.type != proto::UpstreamType::kSocks5)
    bad("auth", label + ": auth = \"user-secret\" needs type = \"socks5\"");
  if (ok && !u.name.empty()) out.push_back(std::move(u));
}

void read_egress(TableReader r, EgressConfig& e) {
  if (auto v = name_list(r, "upstreams")) e.upstreams = *v;
  auto& p = e.policy;
  if (auto v = r.number<std::uint32_t>("health_interval_ms", 0, kMaxMs)) {
    if (*v != 0 && *v < 100)
      r.error(*r.table().get("health_interval_ms"),
              "egress.health_interval_ms must be 0 (off) or at least 100");
    else
      p.health_interval_ms = *v;
  }
  if (const toml::node* n = r.table().get("health_dc")) {
    auto v = r.number<std::int32_t>("health_dc", -32767, 32767);
    if (v && *v == 0)
      r.error(*n, "egress.health_dc must be a DC number such as 2");
    else if (v)
      p.health_dc = static_cast<std::int16_t>(*v);
  }
  if (auto v = r.number<std::uint32_t>("failures", 1, 1'000)) p.failures = *v;
  if (auto v = r.number<std::uint32_t>("retry_min_ms", 100, kMaxMs)) p.retry_min_ms = *v;
  if (auto v = r.number<std::uint32_t>("retry_max_ms", 100, kMaxMs)) p.retry_max_ms = *v;
  if (auto v = r.string("all_down")) {
    if (*v == "fail" || *v == "direct")
      p.fallback_direct = *v == "direct";
    else
      r.error(*r.table().get("all_down"), "egress.all_down must be \"fail\" or \"direct\"");
  }
  if (p.retry_min_ms > p.retry_max_ms)
    r.diag().error(r.diag().pos(r.table().source()),
                   "egress.retry_min_ms is larger than egress.retry_max_ms");
  r.finish();
}

void read_user_egress(TableReader& r, UserConfig& u) {
  if (r.table().get("upstreams")) u.upstreams = name_list(r, "upstreams");
  if (auto v = r.string("upstream_password")) {
    if (!credential_ok(*v))
      r.error(*r.table().get("upstream_password"), "user.upstream_password must be 1..255 bytes");
    else
      u.upstream_password = *v;
  }
}

void validate_egress(const toml::table& root, Config& cfg, Diagnostics& diag) {
  std::set<std::string, std::less<>> names;
  for (const auto& u : cfg.upstreams)
    if (!names.insert(u.name).second)
      diag.error(u.pos, "upstream \"" + u.name + "\" is declared twice");
  auto check_list = [&](const std::vector<std::string>& list, const SourcePos& pos,
                        const std::string& who) {
    std::set<std::string, std::less<>> seen;
    for (const auto& n : list) {
      if (!names.contains(n)) diag.error(pos, who + " names unknown upstream \"" + n + "\"");
      if (!seen.insert(n).second) diag.error(pos, who + " names upstream \"" + n + "\" twice");
    }
  };
  SourcePos egress_pos{diag.file(), 0, 0};
  if (const toml::node* n = root.get("egress")) egress_pos = diag.pos(n->source());
  check_list(cfg.egress.upstreams, egress_pos, "[egress] upstreams");
  // A cell leaves the host from one address per family: every direct
  // upstream with a source in one list must name the same.
  auto check_sources = [&](const std::vector<std::string>& list, const SourcePos& pos,
                           const std::string& who) {
    const UpstreamConfig* first = nullptr;
    for (const auto& n : list) {
      for (const auto& up : cfg.upstreams) {
        if (up.name != n || !up.has_source()) continue;
        if (!first) {
          first = &up;
        } else if (up.source4 != first->source4 || up.source6 != first->source6 ||
                   up.interface != first->interface) {
          diag.error(pos, who + " names direct upstreams \"" + first->name + "\" and \"" + up.name +
                              "\" with different sources (a cell leaves from one)");
        }
      }
    }
  };
  check_sources(cfg.egress.upstreams, egress_pos, "[egress] upstreams");
  for (const auto& u : cfg.users) {
    const auto& list = u.upstreams ? *u.upstreams : cfg.egress.upstreams;
    if (u.upstreams) check_sources(*u.upstreams, u.pos, "user \"" + u.name + "\" upstreams");
    if (u.upstreams) check_list(*u.upstreams, u.pos, "user \"" + u.name + "\" upstreams");
    for (const auto& n : list) {
      for (const auto& up : cfg.upstreams) {
        if (up.name == n && up.auth == UpstreamAuth::kUserSecret && u.upstream_password.empty())
          diag.error(u.pos, "user \"" + u.name + "\" goes through upstream \"" + n +
                                "\" (auth = \"user-secret\") and needs upstream_password");
      }
    }
  }
}

}  // namespace detail

std::string_view upstream_auth_name(UpstreamAuth a) noexcept {
  switch (a) {
    case UpstreamAuth::kFixed:
      return "fixed";
    case UpstreamAuth::kUserName:
      return "user-name";
    case UpstreamAuth::kUserSecret:
      return "user-secret";
    case UpstreamAuth::kNone:
      break;
  }
  return "none";
}

std::optional<EgressSource> egress_source(const Config& c, std::string_view user_name) {
  const UserConfig* user = c.find_user(user_name);
  return egress_source(c, user && user->upstreams ? *user->upstreams : c.egress.upstreams);
}

std::optional<EgressSource> egress_source(const Config& c, const std::vector<std::string>& names) {
  for (const auto& name : names)
    for (const auto& u : c.upstreams)
      if (u.name == name && u.has_source()) return EgressSource{u.source4, u.source6, u.interface};
  return std::nullopt;
}

UpstreamAssignment file_assignment(const Config& c, std::string_view user_name) {
  const UserConfig* user = c.find_user(user_name);
  if (!user) return {};
  return UpstreamAssignment{user->upstreams, user->upstream_password};
}

const std::vector<std::string>& assigned_names(const Config& c, const UpstreamAssignment& a) {
  return a.upstreams ? *a.upstreams : c.egress.upstreams;
}

base::Result<proto::EgressSpec> egress_for(const Config& c, std::string_view user_name) {
  return egress_for(c, user_name, file_assignment(c, user_name));
}

base::Result<proto::EgressSpec> egress_for(const Config& c, std::string_view user_name,
                                           const UpstreamAssignment& a) {
  proto::EgressSpec spec;
  spec.policy = c.egress.policy;
  for (const auto& name : assigned_names(c, a)) {
    const UpstreamConfig* up = nullptr;
    for (const auto& u : c.upstreams)
      if (u.name == name) up = &u;
    if (!up) return base::fail(base::Errc::kBadInput, "unknown upstream \"" + name + "\"");
    proto::UpstreamSpec s;
    s.name = up->name;
    s.type = up->type;
    s.address = up->address;
    s.weight = up->weight;
    const bool socks5 = up->type == proto::UpstreamType::kSocks5;
    switch (up->auth) {
      case UpstreamAuth::kNone:
        break;
      case UpstreamAuth::kFixed:
        s.username = up->username;
        if (socks5) s.password = up->password;
        break;
      case UpstreamAuth::kUserName:
        s.username = std::string(user_name);
        if (socks5) s.password = std::string(user_name);
        break;
      case UpstreamAuth::kUserSecret:
        if (a.password.empty())
          return base::fail(base::Errc::kBadInput,
                            "upstream \"" + name +
                                "\" authenticates with the user's upstream_password, and user \"" +
                                std::string(user_name) + "\" has none");
        s.username = std::string(user_name);
        s.password = a.password;
        break;
    }
    spec.upstreams.push_back(std::move(s));
  }
  return spec;
}

base::Result<void> check_assignment(const Config& c, std::string_view user_name,
                                    const UpstreamAssignment& a) {
  auto bad = [](std::string why) { return base::fail(base::Errc::kBadInput, std::move(why)); };
  if (!a.password.empty() && !credential_ok(a.password))
    return bad("upstream_password: must be 1..255 bytes");
  if (a.upstreams) {
    std::set<std::string, std::less<>> seen;
    for (const auto& n : *a.upstreams) {
      const UpstreamConfig* up = nullptr;
      for (const auto& u : c.upstreams)
        if (u.name == n) up = &u;
      if (!up)
        return bad("upstreams: unknown upstream \"" + n +
                   "\" (the configuration declares no [[upstream]] of that name)");
      if (!seen.insert(n).second) return bad("upstreams: upstream \"" + n + "\" named twice");
      if (up->has_source())
        return bad("upstreams: upstream \"" + n +
                   "\" sets a source address or interface; assign it in the configuration file");
    }
  }
  for (const auto& n : assigned_names(c, a))
    for (const auto& up : c.upstreams)
      if (up.name == n && up.auth == UpstreamAuth::kUserSecret && a.password.empty())
        return bad("upstream_password: user \"" + std::string(user_name) +
                   "\" goes through upstream \"" + n +
                   "\" (auth = \"user-secret\") and needs upstream_password");
  return {};
}

}  // namespace mtw::supervisor
