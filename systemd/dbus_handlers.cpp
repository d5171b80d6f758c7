#include "systemd/dbus_handlers.h"

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <climits>

#include "api/handler.h"
#include "api/json_in.h"
#include "api/json_out.h"
#include "base/log.h"
#include "base/url.h"

namespace mtw::systemd {
namespace json = boost::json;
namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("dbus");
  return l;
}

// The limit keys of POST/PATCH /v1/users ("limits": {...}), flat in a{sv}.
constexpr std::string_view kLimitKeys[] = {
    "rate_up",        "rate_down",       "throttle_rate", "quota",
    "period",         "anchor_day",      "warn_percent",  "max_connections",
    "max_unique_ips", "idle_teardown_s", "on_demand",     "bandwidth_weight"};
constexpr std::string_view kAddKeys[] = {"secrets",    "tls_domain", "enabled",
                                         "expires_at", "comment",    "ad_tag"};
// Keys both AddUser and SetLimits take besides the limits.
constexpr std::string_view kSetKeys[] = {"expires_at", "ad_tag", "upstreams", "upstream_password"};

bool is_limit_key(std::string_view k) {
  return std::find(std::begin(kLimitKeys), std::end(kLimitKeys), k) != std::end(kLimitKeys);
}

tl::unexpected<DbusError> fail(const char* name, std::string message) {
  return tl::unexpected(DbusError{name, std::move(message)});
}

// The HTTP API's messages name fields as its JSON nests them
// ("limits.rate_up"); over D-Bus the keys are flat.
std::string flat_fields(std::string message) {
  for (auto pos = message.find("limits."); pos != std::string::npos; pos = message.find("limits."))
    message.erase(pos, 7);
  return message;
}

tl::unexpected<DbusError> from_api(const api::detail::ApiError& e) {
  return fail(kErrInvalidArgument, flat_fields(e.message));
}

tl::unexpected<DbusError> from_service(const base::Error& e) {
  switch (e.code) {
    case base::Errc::kNotFound:
      return fail(kErrNoSuchUser, e.context);
    case base::Errc::kExists:
      return fail(kErrUserExists, e.context);
    case base::Errc::kExhausted:
      return fail(kErrNoRoom, e.context);
    case base::Errc::kBadInput:
      return fail(kErrInvalidArgument, flat_fields(e.context));
    case base::Errc::kPermission:
      return fail(kErrDeclaredInConfig, e.context);
    default:
      log()->error("service call failed error={}", e.to_string());
      return fail(kErrFailed, "internal error");
  }
}

// A name that cannot exist is answered like the HTTP API's path check.
DbusResult<void> known_name(const std::string& name) {
  if (!supervisor::addressable_user_name(name))
    return fail(kErrNoSuchUser, "no user named " + name);
  return {};
}

sdbus::Variant to_variant(const json::value& v);

sdbus::Variant array_variant(const json::array& a) {
  const bool objects = !a.empty() && std::all_of(a.begin(), a.end(), [](const json::value& x) {
    return x.is_object();
  });
  const bool strings =
      std::all_of(a.begin(), a.end(), [](const json::value& x) { return x.is_string(); });
  if (objects) {
    std::vector<VariantMap> out;
    for (const auto& x : a) out.push_back(to_variant_map(x.get_object()));
    return sdbus::Variant(out);
  }
  if (strings) {
    std::vector<std::string> out;
    for (const auto& x : a) out.emplace_back(x.get_string());
    return sdbus::Variant(out);
  }
  std::vector<sdbus::Variant> out;
  for (const auto& x : a)
    if (!x.is_null()) out.push_back(to_variant(x));
  return sdbus::Variant(out);
}

sdbus::Variant to_variant(const json::value& v) {
  switch (v.kind()) {
    case json::kind::bool_:
      return sdbus::Variant(v.get_bool());
    case json::kind::int64:
      return sdbus::Variant(static_cast<std::int64_t>(v.get_int64()));
    case json::kind::uint64:
      return sdbus::Variant(static_cast<std::uint64_t>(v.get_uint64()));
    case json::kind::double_:
      return sdbus::Variant(v.get_double());
    case json::kind::string:
      return sdbus::Variant(std::string(v.get_string()));
    case json::kind::object:
      return sdbus::Variant(to_variant_map(v.get_object()));
    case json::kind::array:
      return array_variant(v.get_array());
    case json::kind::null:
      break;
  }
  return sdbus::Variant(std::string());  // not reached: callers leave nulls out
}

json::value unsigned_json(std::uint64_t x) {
  // JSON as parsed: what fits int64 is int64 (api/json_in.cpp reads that).
  if (x <= static_cast<std::uint64_t>(INT64_MAX)) return static_cast<std::int64_t>(x);
  return x;
}

DbusResult<json::value> from_variant(const std::string& key, const sdbus::Variant& v) {
  const std::string t = v.peekValueType();
  if (t == "b") return json::value(v.get<bool>());
  if (t == "s") return json::value(v.get<std::string>());
  if (t == "d") return json::value(v.get<double>());
  if (t == "y") return unsigned_json(v.get<std::uint8_t>());
  if (t == "q") return unsigned_json(v.get<std::uint16_t>());
  if (t == "u") return unsigned_json(v.get<std::uint32_t>());
  if (t == "t") return unsigned_json(v.get<std::uint64_t>());
  if (t == "n") return json::value(std::int64_t{v.get<std::int16_t>()});
  if (t == "i") return json::value(std::int64_t{v.get<std::int32_t>()});
  if (t == "x") return json::value(std::int64_t{v.get<std::int64_t>()});
  if (t == "as") {
    json::array a;
    for (auto& s : v.get<std::vector<std::string>>()) a.emplace_back(s);
    return json::value(std::move(a));
  }
  return fail(kErrInvalidArgument, key + " has D-Bus type " + t + ", which no option takes");
}

// Options -> the request body of POST / PATCH /v1/users: limit keys go under
// "limits" ("default" = null: inherit [defaults]), expires_at "never" = null,
// ad_tag "" = none (the API's rule), upstreams "inherit" = null and
// "direct" = [].
DbusResult<json::object> body_of(const VariantMap& m, bool add) {
  auto o = to_json_object(m);
  if (!o) return o;
  json::object body, limits;
  for (auto& kv : *o) {
    const std::string key(kv.key());
    json::value v = kv.value();
    if (is_limit_key(key)) {
      if (v.is_string() && v.get_string() == "default") v = nullptr;
      limits[key] = std::move(v);
      continue;
    }
    const bool add_key =
        std::find(std::begin(kAddKeys), std::end(kAddKeys), key) != std::end(kAddKeys);
    const bool set_key =
        std::find(std::begin(kSetKeys), std::end(kSetKeys), key) != std::end(kSetKeys);
    // SetLimits takes expires_at, ad_tag ("" = no tag) and the upstream
    // keys besides the limits.
    if (!set_key && !(add && add_key)) return fail(kErrInvalidArgument, "unknown option " + key);
    if (key == "expires_at" && v.is_string() && v.get_string() == "never") v = nullptr;
    // upstreams: `as` names, or `s` "inherit" ([egress] upstreams, JSON
    // null: a{sv} has no null) or "direct" (an empty list).
    if (key == "upstreams" && v.is_string() && v.get_string() == "inherit") v = nullptr;
    if (key == "upstreams" && v.is_string() && v.get_string() == "direct") v = json::array();
    body[key] = std::move(v);
  }
  if (!limits.empty()) body["limits"] = std::move(limits);
  return body;
}

DbusResult<VariantMap> record_map(api::Service& s, const api::UserRecord& rec) {
  auto st = s.user_status(rec.user.name);
  return to_variant_map(api::detail::to_json(rec, st ? &*st : nullptr).get_object());
}

std::uint64_t detail_number(std::string_view detail, std::string_view key) {
  const auto pos = detail.find(key);
  if (pos == std::string_view::npos) return 0;
  std::uint64_t x = 0;
  const char* begin = detail.data() + pos + key.size();
  std::from_chars(begin, detail.data() + detail.size(), x);
  return x;
}

}  // namespace

VariantMap to_variant_map(const json::object& o) {
  VariantMap m;
  for (const auto& kv : o)
    if (!kv.value().is_null()) m.emplace(std::string(kv.key()), to_variant(kv.value()));
  return m;
}

DbusResult<json::object> to_json_object(const VariantMap& m) {
  json::object o;
  for (const auto& [key, v] : m) {
    auto j = from_variant(key, v);
    if (!j) return tl::unexpected(j.error());
    o[key] = std::move(*j);
  }
  return o;
}

DbusResult<std::vector<UserRow>> DbusHandlers::list_users() {
  auto users = service_.list_users();
  if (!users) return from_service(users.error());
  const std::vector<api::UserStatus> all = service_.all_status();
  std::vector<UserRow> rows;
  for (const auto& u : *users) {
    const api::UserStatus* st = nullptr;
    for (const auto& s : all)
      if (s.name == u.user.name) st = &s;
    rows.emplace_back(u.user.name, u.user.enabled, st ? st->state : std::string("unknown"),
                      st ? st->throttled : false);
  }
  return rows;
}

DbusResult<VariantMap> DbusHandlers::get_user(const std::string& name) {
  if (auto k = known_name(name); !k) return tl::unexpected(k.error());
  auto rec = service_.get_user(name);
  if (!rec) return from_service(rec.error());
  return record_map(service_, *rec);
}

DbusResult<VariantMap> DbusHandlers::add_user(const std::string& name, const VariantMap& options) {
  if (options.count("name"))
    return fail(kErrInvalidArgument, "name is the first argument, not an option");
  auto body = body_of(options, true);
  if (!body) return tl::unexpected(body.error());
  (*body)["name"] = name;
  auto nu = api::detail::parse_new_user(*body);
  if (!nu) return from_api(nu.error());
  auto rec = service_.create_user(*nu);
  if (!rec) return from_service(rec.error());
  log()->info("dbus user added name={}", name);
  return record_map(service_, *rec);
}

DbusResult<void> DbusHandlers::remove_user(const std::string& name) {
  if (auto k = known_name(name); !k) return k;
  if (auto r = service_.delete_user(name); !r) return from_service(r.error());
  log()->info("dbus user removed name={}", name);
  return {};
}

DbusResult<void> DbusHandlers::set_enabled(const std::string& name, bool enabled) {
  if (auto k = known_name(name); !k) return k;
  api::UserPatch p;
  p.enabled = enabled;
  if (auto r = service_.update_user(name, p); !r) return from_service(r.error());
  log()->info("dbus user {} name={}", enabled ? "enabled" : "disabled", name);
  return {};
}

DbusResult<void> DbusHandlers::set_limits(const std::string& name, const VariantMap& limits) {
  if (auto k = known_name(name); !k) return k;
  auto body = body_of(limits, false);
  if (!body) return tl::unexpected(body.error());
  auto p = api::detail::parse_user_patch(*body);
  if (!p) return from_api(p.error());
  if (auto r = service_.update_user(name, *p); !r) return from_service(r.error());
  log()->info("dbus limits set name={} keys={}", name, limits.size());
  return {};
}

// The HTTP API's rendering (api/json_out.h), so both faces show the same
// members; only `flight` gets a D-Bus type of its own: JSON's pairs would
// otherwise become av of av.
DbusResult<MaskProfilesReply> DbusHandlers::mask_profiles() {
  const supervisor::MaskProfilesView view = service_.server_status().mask_profiles;
  const json::value body = api::detail::to_json(view);
  std::vector<VariantMap> out;
  const json::array& rendered = body.at("profiles").as_array();
  for (std::size_t i = 0; i < rendered.size() && i < view.profiles.size(); ++i) {
    VariantMap m = to_variant_map(rendered[i].as_object());
    std::vector<sdbus::Struct<std::uint64_t, std::uint64_t>> flight;
    for (const auto& r : view.profiles[i].flight) flight.emplace_back(r.min, r.max);
    m["flight"] = sdbus::Variant(flight);
    out.push_back(std::move(m));
  }
  return MaskProfilesReply{view.probing, std::move(out)};
}

DbusResult<std::vector<VariantMap>> DbusHandlers::upstreams() {
  const json::value body = api::detail::to_json(service_.server_status().upstreams);
  std::vector<VariantMap> out;
  for (const auto& u : body.at("upstreams").as_array())
    out.push_back(to_variant_map(u.as_object()));
  return out;
}

DbusResult<VariantMap> DbusHandlers::get_status(const std::string& name) {
  if (auto k = known_name(name); !k) return tl::unexpected(k.error());
  auto st = service_.user_status(name);
  if (!st) return from_service(st.error());
  return to_variant_map(api::detail::to_json(*st).get_object());
}

// Through the HTTP API's own handler: the same defaults (last 30 days / 12
// months), range limits and date forms as GET /v1/users/{name}/usage.
DbusResult<std::vector<UsageRow>> DbusHandlers::get_usage(const std::string& name,
                                                          const std::string& by,
                                                          const std::string& from,
                                                          const std::string& to) {
  if (auto k = known_name(name); !k) return tl::unexpected(k.error());
  std::string target = "/v1/users/" + name + "/usage?by=" + base::percent_encode(by);
  if (!from.empty()) target += "&from=" + base::percent_encode(from);
  if (!to.empty()) target += "&to=" + base::percent_encode(to);
  api::detail::TokenState no_token;
  api::detail::Handler handler(service_, 0, no_token);
  api::detail::HttpRequest req;
  req.method = "GET";
  req.target = target;
  req.transport = api::detail::Transport::kUnix;
  const api::detail::HttpResponse res = handler.handle(req);
  boost::system::error_code ec;
  const json::value body = json::parse(res.body, ec);
  if (res.status != 200) {
    std::string message = "usage query failed";
    if (!ec && body.is_object())
      if (auto* e = body.get_object().if_contains("error"); e && e->is_object())
        if (auto* m = e->get_object().if_contains("message"); m && m->is_string())
          message = std::string(m->get_string());
    if (res.status == 404) return fail(kErrNoSuchUser, message);
    if (res.status == 400) return fail(kErrInvalidArgument, message);
    return fail(kErrFailed, message);
  }
  std::vector<UsageRow> rows;
  if (ec || !body.is_object()) return fail(kErrFailed, "internal error");
  for (const auto& item : body.at("items").as_array()) {
    const auto& o = item.as_object();
    rows.emplace_back(std::string(o.at("date").as_string()),
                      o.at("bytes_up").to_number<std::uint64_t>(),
                      o.at("bytes_down").to_number<std::uint64_t>());
  }
  return rows;
}

DbusResult<void> DbusHandlers::reload() {
  // What waits for a restart is in the log and the HTTP API's answer; the
  // D-Bus method keeps its empty reply.
  if (auto r = service_.reload(); !r) return fail(kErrReloadRejected, r.error().context);
  return {};
}

std::optional<DbusSignal> DbusHandlers::signal_for(const api::LiveEvent& e) {
  if (e.user.empty()) return std::nullopt;
  DbusSignal s;
  s.user = e.user;
  if (e.kind == "quota_throttled" || e.kind == "unique_ips_throttled") {
    s.member = "UserThrottled";
    s.reason = e.kind == "quota_throttled" ? "quota" : "unique_ips";
    s.detail = e.detail;
  } else if (e.kind == "quota_unthrottled" || e.kind == "unique_ips_unthrottled") {
    s.member = "UserUnthrottled";
    s.reason = e.kind == "quota_unthrottled" ? "quota" : "unique_ips";
  } else if (e.kind == "quota_warned") {
    // detail: "used=N quota=M" (daemon/daemon_accounting.cpp).
    s.member = "QuotaWarning";
    s.used_bytes = detail_number(e.detail, "used=");
    s.quota_bytes = detail_number(e.detail, "quota=");
    if (s.quota_bytes != 0)
      s.number = static_cast<std::uint32_t>(std::min<long double>(
          static_cast<long double>(s.used_bytes) * 100 / static_cast<long double>(s.quota_bytes),
          UINT32_MAX));
  } else if (e.kind == "worker_restarted") {
    s.member = "WorkerRestarted";
    if (auto st = service_.user_status(e.user)) s.number = st->restarts;
  } else if (e.kind == "user_expired") {
    s.member = "UserExpired";
  } else if (e.kind == "upstream_down" || e.kind == "upstream_up") {
    // detail: "upstream=NAME ..." (daemon/upstream_sync.cpp); names hold no space.
    s.member = "UpstreamHealth";
    s.up = e.kind == "upstream_up";
    s.detail = e.detail;
    if (const auto at = e.detail.find("upstream="); at != std::string::npos) {
      const auto from = at + 9;
      s.reason = e.detail.substr(from, e.detail.find(' ', from) - from);
    }
  } else if (e.kind == "usage_reset") {
    s.member = "UsageReset";
    s.reason = e.detail;  // api | period
  } else {
    return std::nullopt;
  }
  return s;
}

}  // namespace mtw::systemd
