#include "api/handler.h"

#include <ctime>
#include <map>
#include <unordered_map>
#include <vector>

#include <boost/json.hpp>

#include "api/dates.h"
#include "api/json_in.h"
#include "api/json_out.h"
#include "api/metrics.h"
#include "api/query.h"
#include "api/token.h"
#include "base/log.h"
#include "supervisor/links.h"

namespace mtw::api::detail {
namespace json = boost::json;
namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("api");
  return l;
}

struct Target {
  std::vector<std::string_view> segments;  // of the path after "/v1/"
  bool metrics = false;                    // "/metrics", the one path outside /v1
  Query query;
};

// json::serialize(v) + "\n", written straight into the body: one
// allocation for the usual answer instead of two (every allocation of 1 KiB
// or more also makes glibc consolidate its small free chunks).
HttpResponse json_response(int status, const json::value& v) {
  json::serializer sr;
  sr.reset(&v);
  std::string body;
  std::size_t chunk = 2048;  // a user's status is ~1.2 KB
  while (!sr.done()) {
    const std::size_t used = body.size();
    body.resize(used + chunk);
    body.resize(used + sr.read(body.data() + used, chunk).size());
    chunk *= 2;
  }
  body += '\n';
  return HttpResponse{status, "application/json", std::move(body), {}};
}

// Room for the DOM of one user's record (~5 KB): it only lives
// until json_response() has serialized it, so it is built on the stack
// instead of in ~70 small heap blocks (monotonic_resource falls back to the
// heap if it is ever larger).
constexpr std::size_t kDomArena = 8192;

tl::unexpected<ApiError> not_found(std::string message) {
  return tl::unexpected(ApiError{404, std::move(message), ""});
}

ApiError from_service(const base::Error& e) {
  switch (e.code) {
    case base::Errc::kNotFound:
      return {404, e.context, ""};
    case base::Errc::kExists:
      return {409, e.context, ""};
    // No room in [cells] for another user: the request was fine, the state
    // refuses it, like a taken name.
    case base::Errc::kExhausted:
      return {409, e.context, ""};
    case base::Errc::kPermission:
      return {403, e.context, ""};
    case base::Errc::kBadInput: {
      // "limits.rate_up: must be ..." names the field.
      std::string field;
      const auto colon = e.context.find(':');
      if (colon != std::string::npos && colon > 0) {
        const std::string_view head(e.context.data(), colon);
        bool ident = true;
        for (char c : head)
          ident = ident && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' ||
                            c == '[' || c == ']');
        if (ident) field = std::string(head);
      }
      return {400, e.context, field};
    }
    default:
      log()->error("service call failed error={}", e.to_string());
      return {500, "internal error", ""};
  }
}

template <class T>
ApiResult<T> svc(base::Result<T>&& r) {
  if (!r) return tl::unexpected(from_service(r.error()));
  if constexpr (std::is_void_v<T>)
    return {};
  else
    return std::move(*r);
}

std::int64_t today() { return static_cast<std::int64_t>(std::time(nullptr)) / 86'400; }

bool is_json_type(std::string_view ct) {
  const auto semi = ct.find(';');
  std::string_view media = ct.substr(0, semi);
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  if (media.size() != 16) return false;
  for (std::size_t i = 0; i < media.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(media[i])) != "application/json"[i]) return false;
  return true;
}

// ---- handlers of one route each -------------------------------------------

class Call {
 public:
  Call(Service& s, const HttpRequest& r, const Target& t, std::uint32_t grace, TokenState& token)
      : s_(s), r_(r), t_(t), grace_(grace), token_(token) {}

  ApiResult<json::object> body(bool allow_empty) { return parse_object(r_.body, allow_empty); }

  ApiResult<HttpResponse> user_json(int status, const UserRecord& rec) {
    auto st = s_.user_status(rec.user.name);
    unsigned char arena[kDomArena];
    json::monotonic_resource mr(arena, sizeof arena);
    return json_response(status, to_json(rec, st ? &*st : nullptr, &mr));
  }

  ApiResult<HttpResponse> list_users() {
    auto users = svc(s_.list_users());
    if (!users) return tl::unexpected(users.error());
    const std::vector<UserStatus> all = s_.all_status();
    // By name, not a scan per user: 1,000 users would be 10^6 comparisons.
    std::unordered_map<std::string_view, const UserStatus*> by_name;
    by_name.reserve(all.size());
    for (const auto& s : all) by_name.emplace(s.name, &s);
    json::array arr;
    arr.reserve(users->size());
    for (const auto& u : *users) {
      auto it = by_name.find(u.user.name);
      arr.push_back(to_json(u, it == by_name.end() ? nullptr : it->second));
    }
    return json_response(200, json::object{{"users", std::move(arr)}});
  }

  ApiResult<HttpResponse> create_user() {
    auto o = body(false);
    if (!o) return tl::unexpected(o.error());
    auto nu = parse_new_user(*o);
    if (!nu) return tl::unexpected(nu.error());
    auto rec = svc(s_.create_user(*nu));
    if (!rec) return tl::unexpected(rec.error());
    return user_json(201, *rec);
  }

  ApiResult<HttpResponse> patch_user(std::string_view name) {
    auto o = body(false);
    if (!o) return tl::unexpected(o.error());
    auto p = parse_user_patch(*o);
    if (!p) return tl::unexpected(p.error());
    return updated(s_.update_user(name, *p));
  }

  ApiResult<HttpResponse> set_enabled(std::string_view name, bool enabled) {
    auto o = body(true);
    if (!o) return tl::unexpected(o.error());
    if (auto e = expect_empty(*o); !e) return tl::unexpected(e.error());
    UserPatch p;
    p.enabled = enabled;
    return updated(s_.update_user(name, p));
  }

  ApiResult<HttpResponse> rotate(std::string_view name) {
    auto o = body(true);
    if (!o) return tl::unexpected(o.error());
    auto rr = parse_rotate(*o, grace_);
    if (!rr) return tl::unexpected(rr.error());
    return updated(s_.rotate_secret(name, rr->secret, rr->grace_s));
  }

  ApiResult<HttpResponse> reset(std::string_view name) {
    auto o = body(true);
    if (!o) return tl::unexpected(o.error());
    if (auto e = expect_empty(*o); !e) return tl::unexpected(e.error());
    if (auto r = svc(s_.reset_usage(name)); !r) return tl::unexpected(r.error());
    return updated(s_.get_user(name));
  }

  ApiResult<HttpResponse> updated(base::Result<UserRecord>&& r) {
    auto rec = svc(std::move(r));
    if (!rec) return tl::unexpected(rec.error());
    return user_json(200, *rec);
  }

  ApiResult<HttpResponse> usage(std::string_view name);
  ApiResult<HttpResponse> qr(std::string_view name);
  ApiResult<HttpResponse> events();
  ApiResult<HttpResponse> rotate_token();

 private:
  Service& s_;
  const HttpRequest& r_;
  const Target& t_;
  std::uint32_t grace_;
  TokenState& token_;
};

ApiResult<HttpResponse> Call::usage(std::string_view name) {
  const Query& q = t_.query;
  std::string by = "day";
  if (auto it = q.find("by"); it != q.end()) by = it->second;
  if (by != "day" && by != "month") return bad("by", "by must be day or month");
  const bool month = by == "month";
  const Civil now = civil_from_days(today());
  // Defaults: the last 30 days, or the last 12 months, up to today.
  std::int64_t dflt_to = today(), dflt_from = dflt_to - 29;
  if (month) {
    const std::int64_t m0 = now.year * 12 + (now.month - 1) - 11;
    dflt_from = days_from_civil(m0 / 12, static_cast<unsigned>(m0 % 12) + 1, 1);
  }
  auto to = query_day(q, "to", dflt_to, month);
  if (!to) return tl::unexpected(to.error());
  auto from = query_day(q, "from", dflt_from, month);
  if (!from) return tl::unexpected(from.error());
  if (*from > *to) return bad("from", "from must not be after to");
  json::array items;
  if (!month) {
    if (*to - *from >= 3'660) return bad("from", "at most 3660 days per request");
    auto days = svc(s_.daily_usage(name, *from * 86'400, (*to + 1) * 86'400));
    if (!days) return tl::unexpected(days.error());
    std::map<std::int64_t, supervisor::Usage> by_day;
    for (const auto& d : *days) by_day[d.day] = d.usage;
    for (std::int64_t d = *from; d <= *to; ++d) {
      const supervisor::Usage u = by_day.count(d) ? by_day[d] : supervisor::Usage{};
      items.push_back(json::object{{"date", format_day(d)},
                                   {"bytes_up", u.bytes_up},
                                   {"bytes_down", u.bytes_down},
                                   {"bytes_total", u.total()}});
    }
  } else {
    const Civil f = civil_from_days(*from), t = civil_from_days(*to);
    const std::int64_t mf = f.year * 12 + (f.month - 1), mt = t.year * 12 + (t.month - 1);
    if (mt - mf >= 1'200) return bad("from", "at most 1200 months per request");
    const std::int64_t end_day =
        days_from_civil((mt + 1) / 12, static_cast<unsigned>((mt + 1) % 12) + 1, 1);
    auto months =
        svc(s_.monthly_usage(name, days_from_civil(f.year, f.month, 1) * 86'400, end_day * 86'400));
    if (!months) return tl::unexpected(months.error());
    std::map<std::int64_t, supervisor::Usage> by_month;
    for (const auto& m : *months) by_month[std::int64_t{m.year} * 12 + (m.month - 1)] = m.usage;
    for (std::int64_t m = mf; m <= mt; ++m) {
      const supervisor::Usage u = by_month.count(m) ? by_month[m] : supervisor::Usage{};
      items.push_back(json::object{
          {"date", format_month(static_cast<int>(m / 12), static_cast<unsigned>(m % 12) + 1)},
          {"bytes_up", u.bytes_up},
          {"bytes_down", u.bytes_down},
          {"bytes_total", u.total()}});
    }
  }
  return json_response(200, json::object{{"by", by}, {"items", std::move(items)}});
}

ApiResult<HttpResponse> Call::qr(std::string_view name) {
  std::string format = "png";
  if (auto it = t_.query.find("format"); it != t_.query.end()) format = it->second;
  if (format != "png" && format != "svg") return bad("format", "format must be png or svg");
  auto index = query_uint(t_.query, "index", 0, 0, 1'000'000);
  if (!index) return tl::unexpected(index.error());
  auto links = svc(s_.links(name));
  if (!links) return tl::unexpected(links.error());
  if (*index >= links->tg.size())
    return bad("index", "index must be below the number of tg links (" +
                            std::to_string(links->tg.size()) + ")");
  const std::string& link = links->tg[*index];
  if (format == "svg") {
    auto svg = supervisor::qr_svg(link);
    if (!svg) return tl::unexpected(from_service(svg.error()));
    return HttpResponse{200, "image/svg+xml", std::move(*svg), {}};
  }
  auto png = supervisor::qr_png(link);
  if (!png) return tl::unexpected(from_service(png.error()));
  return HttpResponse{
      200, "image/png", std::string(reinterpret_cast<const char*>(png->data()), png->size()), {}};
}

ApiResult<HttpResponse> Call::events() {
  auto after = query_uint(t_.query, "after", 0, 0, UINT64_MAX);
  if (!after) return tl::unexpected(after.error());
  auto limit = query_uint(t_.query, "limit", 100, 1, 1'000);
  if (!limit) return tl::unexpected(limit.error());
  json::array arr;
  for (const auto& e : s_.events(*after, *limit)) arr.push_back(to_json(e));
  return json_response(200, json::object{{"events", std::move(arr)}});
}

ApiResult<HttpResponse> Call::rotate_token() {
  if (r_.transport != Transport::kUnix)
    return tl::unexpected(ApiError{403, "the token can only be rotated over the Unix socket", ""});
  auto o = body(true);
  if (!o) return tl::unexpected(o.error());
  if (auto e = expect_empty(*o); !e) return tl::unexpected(e.error());
  std::string token = generate_token();
  std::string hash = token_hash(token);
  if (auto st = store_token_hash(token_.path, hash); !st) {
    log()->error("api token store failed path={} error={}", token_.path, st.error().to_string());
    return tl::unexpected(ApiError{500, "could not store the new token", ""});
  }
  token_.hash_hex = std::move(hash);  // the old token stops working now
  log()->info("api token rotated");
  HttpResponse res = json_response(200, json::object{{"token", token}});
  res.headers.emplace_back("Cache-Control", "no-store");
  return res;
}

// ---- routing --------------------------------------------------------------

struct RouteMatch {
  std::string_view allow;                // "GET, POST"
  std::vector<std::string_view> params;  // query parameters it takes
};

bool method_in(std::string_view method, std::string_view allow) {
  std::size_t pos = 0;
  while (pos < allow.size()) {
    auto end = allow.find(", ", pos);
    if (allow.substr(pos, end - pos) == method) return true;
    if (end == std::string_view::npos) break;
    pos = end + 2;
  }
  return false;
}

ApiResult<Target> parse_target(std::string_view target) {
  Target t;
  t.segments.reserve(3);  // the longest route: users/{name}/{action}
  const std::string_view path = target_path(target);
  if (path.size() < target.size()) {
    auto q = parse_query(target.substr(path.size() + 1));
    if (!q) return tl::unexpected(q.error());
    t.query = std::move(*q);
  }
  t.metrics = path == "/metrics";
  if (t.metrics) return t;
  if (path.substr(0, 4) != "/v1/") return not_found("no such path");
  std::string_view rest = path.substr(4);
  for (;;) {
    const auto slash = rest.find('/');
    t.segments.push_back(rest.substr(0, slash));
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  return t;
}

// Which methods and query parameters the path takes; `allow` is empty for
// a path the API does not have.
RouteMatch match_route(const Target& t) {
  RouteMatch m{"", {}};
  // Assigned member by member: GCC 12 with ASan flags aggregate assignment
  // from a nested braced list as a stack use after scope.
  auto route = [&m](std::string_view allow, std::initializer_list<std::string_view> params) {
    m.allow = allow;
    m.params.assign(params.begin(), params.end());
  };
  const auto& seg = t.segments;
  const std::size_t n = seg.size();
  const bool users = n >= 1 && seg[0] == "users";
  if (t.metrics)
    route("GET", {});
  else if (n == 1 && seg[0] == "status")
    route("GET", {});
  else if (n == 1 && seg[0] == "mask-profiles")
    route("GET", {});
  else if (n == 1 && seg[0] == "fleet")
    route("GET", {});
  else if (n == 1 && seg[0] == "upstreams")
    route("GET", {});
  else if (n == 1 && seg[0] == "reload")
    route("POST", {});
  else if (n == 1 && seg[0] == "events")
    route("GET", {"after", "limit"});
  else if (n == 2 && seg[0] == "token" && seg[1] == "rotate")
    route("POST", {});
  else if (users && n == 1)
    route("GET, POST", {});
  else if (users && n == 2)
    route("GET, PATCH, DELETE", {});
  else if (users && n == 3) {
    const std::string_view a = seg[2];
    if (a == "enable" || a == "disable" || a == "rotate" || a == "reset")
      route("POST", {});
    else if (a == "status" || a == "links" || a == "ips")
      route("GET", {});
    else if (a == "usage")
      route("GET", {"by", "from", "to"});
    else if (a == "qr")
      route("GET", {"format", "index"});
  }
  return m;
}

// Runs a request that passed Handler::route's checks (a known path, a valid
// user name, an allowed method, a JSON body if any, known parameters).
ApiResult<HttpResponse> dispatch(Service& service, Call& c, std::string_view method,
                                 const Target& t, const ApiCounters& counters) {
  const auto& seg = t.segments;
  const std::size_t n = seg.size();
  if (t.metrics)
    return HttpResponse{200,
                        "text/plain; version=0.0.4; charset=utf-8",
                        metrics_text(service.server_status(), service.all_status(), counters),
                        {}};
  if (seg[0] == "status") return json_response(200, to_json(service.server_status()));
  if (seg[0] == "mask-profiles")
    return json_response(200, to_json(service.server_status().mask_profiles));
  if (seg[0] == "fleet") return json_response(200, to_json(service.server_status().fleet));
  if (seg[0] == "upstreams") return json_response(200, to_json(service.server_status().upstreams));
  if (seg[0] == "reload") {
    auto o = c.body(true);
    if (!o) return tl::unexpected(o.error());
    if (auto e = expect_empty(*o); !e) return tl::unexpected(e.error());
    auto rr = service.reload();
    if (!rr) return tl::unexpected(ApiError{422, rr.error().context, ""});
    json::array pending;
    for (const auto& name : rr->restart_needed) pending.emplace_back(name);
    return json_response(200,
                         json::object{{"reloaded", true}, {"restart_needed", std::move(pending)}});
  }
  if (seg[0] == "events") return c.events();
  if (seg[0] == "token") return c.rotate_token();
  if (n == 1) return method == "GET" ? c.list_users() : c.create_user();
  const std::string_view name = seg[1];
  if (n == 2) {
    if (method == "GET") return c.updated(service.get_user(name));
    if (method == "PATCH") return c.patch_user(name);
    if (auto d = svc(service.delete_user(name)); !d) return tl::unexpected(d.error());
    return HttpResponse{204, "", "", {}};
  }
  const std::string_view a = seg[2];
  if (a == "enable" || a == "disable") return c.set_enabled(name, a == "enable");
  if (a == "rotate") return c.rotate(name);
  if (a == "reset") return c.reset(name);
  if (a == "usage") return c.usage(name);
  if (a == "qr") return c.qr(name);
  if (a == "links") {
    auto l = svc(service.links(name));
    if (!l) return tl::unexpected(l.error());
    return json_response(200, to_json(*l));
  }
  if (a == "ips") {
    auto ips = svc(service.client_ips(name));
    if (!ips) return tl::unexpected(ips.error());
    return json_response(200, to_json(*ips));
  }
  auto st = svc(service.user_status(name));  // "status"
  if (!st) return tl::unexpected(st.error());
  // The most polled answer: written as text, no DOM (json_writer.h).
  HttpResponse res{200, "application/json", {}, {}};
  res.body.reserve(2048);  // ~1.2 KB; one allocation
  JsonWriter w(res.body);
  write_json(w, *st);
  res.body += '\n';
  return res;
}

}  // namespace

std::string_view target_path(std::string_view target) noexcept {
  return target.substr(0, target.find('?'));
}

const char* error_code_name(int status) noexcept {
  switch (status) {
    case 400:
      return "bad_request";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 408:
      return "request_timeout";
    case 409:
      return "conflict";
    case 413:
      return "payload_too_large";
    case 415:
      return "unsupported_media_type";
    case 422:
      return "unprocessable";
    default:
      return "internal";
  }
}

HttpResponse error_response(const ApiError& e) {
  json::object err{{"code", error_code_name(e.status)}, {"message", e.message}};
  if (!e.field.empty()) err["field"] = e.field;
  HttpResponse r = json_response(e.status, json::object{{"error", std::move(err)}});
  if (e.status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

std::optional<HttpResponse> Handler::authorize(Transport transport,
                                               std::string_view authorization) const {
  if (transport == Transport::kUnix) return std::nullopt;
  constexpr std::string_view kBearer = "Bearer ";
  if (!token_.hash_hex.empty() && authorization.size() > kBearer.size() &&
      authorization.substr(0, kBearer.size()) == kBearer &&
      token_matches(authorization.substr(kBearer.size()), token_.hash_hex))
    return std::nullopt;
  return error_response(ApiError{401, "a valid bearer token is required", ""});
}

HttpResponse Handler::handle(const HttpRequest& request) {
  try {
    if (auto denied = authorize(request.transport, request.authorization)) return *denied;
    auto r = route(request);
    if (!r) return error_response(r.error());
    return std::move(*r);
  } catch (const std::exception& e) {
    log()->error("api handler failed path={} what={}", target_path(request.target), e.what());
    return error_response(ApiError{500, "internal error", ""});
  }
}

ApiResult<HttpResponse> Handler::route(const HttpRequest& r) {
  auto t = parse_target(r.target);
  if (!t) return tl::unexpected(t.error());
  const RouteMatch m = match_route(*t);
  if (m.allow.empty()) return not_found("no such path");
  const auto& seg = t->segments;
  if (seg.size() >= 2 && seg[0] == "users" && !supervisor::addressable_user_name(seg[1]))
    return not_found("no user named " + std::string(seg[1]));
  if (!method_in(r.method, m.allow)) {
    ApiError e{405, r.method + " is not allowed here (allowed: " + std::string(m.allow) + ")", ""};
    HttpResponse res = error_response(e);
    res.headers.emplace_back("Allow", std::string(m.allow));
    return res;
  }
  if (!r.body.empty() && !is_json_type(r.content_type))
    return tl::unexpected(ApiError{415, "request bodies must be application/json", ""});
  if (auto p = allow_params(t->query, m.params); !p) return tl::unexpected(p.error());
  Call c(service_, r, *t, secret_grace_s_, token_);
  return dispatch(service_, c, r.method, *t, counters_);
}

}  // namespace mtw::api::detail
