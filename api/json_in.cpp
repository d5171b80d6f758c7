#include "api/json_in.h"

#include <set>
#include <vector>

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>

#include "api/dates.h"
#include "proto/secret.h"
#include "supervisor/middle_material.h"
#include "supervisor/units.h"
#include "supervisor/user_name.h"

namespace mtw::api::detail {
namespace json = boost::json;
namespace {

using supervisor::UnixSeconds;

using supervisor::kMaxLimitRateBps;
using supervisor::kMinLimitRateBps;
constexpr UnixSeconds kMaxUnixSeconds = 253'402'300'799;  // 9999-12-31T23:59:59Z

std::string json_type_name(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "boolean";
    case json::kind::int64:
    case json::kind::uint64:
      return "integer";
    case json::kind::double_:
      return "number";
    case json::kind::string:
      return "string";
    case json::kind::array:
      return "array";
    case json::kind::object:
      return "object";
  }
  return "value";
}

tl::unexpected<ApiError> wrong_type(const std::string& field, const json::value& v,
                                    std::string_view want) {
  return bad(field, field + " must be " + std::string(want) + ", not " + json_type_name(v));
}

// An integer in [lo, hi]; doubles (even 1.0) are a type error.
ApiResult<std::int64_t> integer(const std::string& field, const json::value& v, std::int64_t lo,
                                std::int64_t hi) {
  std::int64_t x = 0;
  if (v.is_int64()) {
    x = v.get_int64();
  } else if (v.is_uint64()) {
    return bad(field, field + " must be at most " + std::to_string(hi));
  } else {
    return wrong_type(field, v, "an integer");
  }
  if (x < lo || x > hi)
    return bad(field, field + " must be in " + std::to_string(lo) + ".." + std::to_string(hi));
  return x;
}

ApiResult<bool> boolean(const std::string& field, const json::value& v) {
  if (!v.is_bool()) return wrong_type(field, v, "a boolean");
  return v.get_bool();
}

ApiResult<std::string> string(const std::string& field, const json::value& v) {
  if (!v.is_string()) return wrong_type(field, v, "a string");
  return std::string(v.get_string());
}

std::size_t utf8_chars(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Unix seconds, "YYYY-MM-DD" (through that day, UTC) or null.
ApiResult<std::optional<UnixSeconds>> expiry(const json::value& v) {
  const std::string field = "expires_at";
  if (v.is_null()) return std::optional<UnixSeconds>{};
  if (v.is_string()) {
    auto day = parse_day(v.get_string());
    if (!day) return bad(field, "expires_at must be unix seconds or a date YYYY-MM-DD");
    return std::optional<UnixSeconds>{(*day + 1) * 86'400};
  }
  auto s = integer(field, v, 0, kMaxUnixSeconds);
  if (!s) {
    if (!v.is_number()) return wrong_type(field, v, "unix seconds, a date YYYY-MM-DD or null");
    return tl::unexpected(s.error());
  }
  return std::optional<UnixSeconds>{*s};
}

// A rate or size: integer or text; "unlimited"/"none"/0 = 0 where allowed.
ApiResult<std::uint64_t> quantity(const std::string& field, const json::value& v, bool is_rate,
                                  bool allow_unlimited, std::uint64_t min) {
  std::uint64_t x = 0;
  if (v.is_string()) {
    const std::string_view s = v.get_string();
    if (allow_unlimited && (s == "unlimited" || s == "none")) return 0;
    auto parsed = is_rate ? supervisor::parse_rate(s) : supervisor::parse_size(s);
    if (!parsed) return bad(field, field + ": " + parsed.error().context);
    x = *parsed;
  } else if (v.is_int64() || v.is_uint64()) {
    if (v.is_int64() && v.get_int64() < 0) return bad(field, field + " must not be negative");
    x = v.is_int64() ? static_cast<std::uint64_t>(v.get_int64()) : v.get_uint64();
    if (x > static_cast<std::uint64_t>(INT64_MAX)) return bad(field, field + " is too large");
  } else {
    return wrong_type(field, v,
                      is_rate ? "a rate (bits/s or text like \"20mbit\")"
                              : "a size (bytes or text like \"50GiB\")");
  }
  if (x == 0 && allow_unlimited) return 0;
  if (x < min)
    return bad(field, field + " must be at least " +
                          (is_rate ? supervisor::format_rate(min) : supervisor::format_size(min)) +
                          (allow_unlimited ? " (or 0 / \"unlimited\")" : ""));
  if (is_rate && x > kMaxLimitRateBps) return bad(field, field + " must be at most 100gbit");
  return x;
}

template <class T, class F>
ApiResult<void> nullable(std::optional<std::optional<T>>& out, const json::value& v, F&& parse) {
  if (v.is_null()) {
    out = std::optional<T>{};
    return {};
  }
  auto r = parse(v);
  if (!r) return tl::unexpected(r.error());
  out = std::optional<T>{static_cast<T>(*r)};
  return {};
}

ApiResult<void> limit_field(UserPatch& p, std::string_view key, const json::value& v) {
  const std::string f = "limits." + std::string(key);
  auto rate = [&](bool unlimited) {
    return [&, unlimited](const json::value& x) {
      return quantity(f, x, true, unlimited, kMinLimitRateBps);
    };
  };
  auto range = [&](supervisor::IntRange r) {
    return [&, r](const json::value& x) { return integer(f, x, r.lo, r.hi); };
  };
  if (key == "rate_up") return nullable(p.rate_up_bps, v, rate(true));
  if (key == "rate_down") return nullable(p.rate_down_bps, v, rate(true));
  if (key == "throttle_rate") return nullable(p.throttle_bps, v, rate(false));
  if (key == "quota")
    return nullable(p.quota_bytes, v,
                    [&](const json::value& x) { return quantity(f, x, false, true, 1); });
  if (key == "period")
    return nullable(p.period, v, [&](const json::value& x) -> ApiResult<supervisor::Period> {
      if (!x.is_string()) return wrong_type(f, x, "a string");
      auto per = supervisor::parse_period(x.get_string());
      if (!per) return bad(f, f + " must be daily, weekly, monthly or lifetime");
      return *per;
    });
  if (key == "anchor_day") return nullable(p.anchor_day, v, range(supervisor::kAnchorDayRange));
  if (key == "warn_percent")
    return nullable(p.warn_percent, v, range(supervisor::kWarnPercentRange));
  if (key == "max_connections")
    return nullable(p.max_connections, v, range(supervisor::kMaxConnectionsRange));
  if (key == "max_unique_ips")
    return nullable(p.max_unique_ips, v, range(supervisor::kMaxUniqueIpsRange));
  if (key == "idle_teardown_s")
    return nullable(p.idle_teardown_s, v, range(supervisor::kIdleTeardownRange));
  if (key == "bandwidth_weight")
    return nullable(p.bandwidth_weight, v, range(supervisor::kBandwidthWeightRange));
  if (key == "on_demand")
    return nullable(p.on_demand, v, [&](const json::value& x) { return boolean(f, x); });
  return bad(f, "unknown field " + f);
}

ApiResult<void> parse_limits(UserPatch& p, const json::value& v) {
  if (!v.is_object()) return wrong_type("limits", v, "an object");
  for (const auto& kv : v.get_object()) {
    auto r = limit_field(p, kv.key(), kv.value());
    if (!r) return r;
  }
  // A weekly anchor is an ISO weekday; caught here when both come in one request.
  if (p.period && *p.period == supervisor::Period::kWeekly && p.anchor_day && *p.anchor_day &&
      **p.anchor_day > 7)
    return bad("limits.anchor_day", "limits.anchor_day of a weekly period must be in 1..7");
  return {};
}

ApiResult<std::string> comment(const json::value& v) {
  auto s = string("comment", v);
  if (!s) return s;
  if (utf8_chars(*s) > kMaxCommentChars)
    return bad("comment", "comment is longer than 256 characters");
  return s;
}

// enabled / expires_at / comment / ad_tag / upstreams / upstream_password /
// limits: shared by POST and PATCH.
ApiResult<bool> common_field(UserPatch& p, std::string_view key, const json::value& v) {
  if (key == "enabled") {
    auto b = boolean("enabled", v);
    if (!b) return tl::unexpected(b.error());
    p.enabled = *b;
  } else if (key == "expires_at") {
    auto e = expiry(v);
    if (!e) return tl::unexpected(e.error());
    p.expires_at = *e;
  } else if (key == "comment") {
    auto c = comment(v);
    if (!c) return tl::unexpected(c.error());
    p.comment = std::move(*c);
  } else if (key == "ad_tag") {
    // null or "" removes the tag; otherwise the one rule of parse_ad_tag.
    if (v.is_null()) {
      p.ad_tag = std::string();
    } else {
      auto t = string("ad_tag", v);
      if (!t) return tl::unexpected(t.error());
      if (t->empty()) {
        p.ad_tag = std::string();
      } else {
        auto tag = supervisor::parse_ad_tag(*t);
        if (!tag) return bad("ad_tag", tag.error().context);
        p.ad_tag = supervisor::format_ad_tag(*tag);
      }
    }
  } else if (key == "upstreams") {
    // null: [egress] upstreams again; []: direct; else names, checked
    // against the configuration by the supervisor.
    if (v.is_null()) {
      p.upstreams = std::optional<std::vector<std::string>>();
    } else {
      if (!v.is_array()) return wrong_type("upstreams", v, "an array of upstream names or null");
      const auto& a = v.get_array();
      if (a.size() > kMaxUpstreams)
        return bad("upstreams", "upstreams: at most " + std::to_string(kMaxUpstreams) + " names");
      std::vector<std::string> names;
      for (std::size_t i = 0; i < a.size(); ++i) {
        const std::string f = "upstreams[" + std::to_string(i) + "]";
        if (!a[i].is_string()) return wrong_type(f, a[i], "an upstream name");
        if (!supervisor::valid_user_name(a[i].get_string()))
          return bad(f, f + " must be " + std::string(supervisor::kUserNameRule));
        names.emplace_back(a[i].get_string());
      }
      p.upstreams = std::move(names);
    }
  } else if (key == "upstream_password") {
    // A credential: messages never echo it. null or "" removes it.
    if (v.is_null()) {
      p.upstream_password = std::string();
    } else {
      if (!v.is_string()) return wrong_type("upstream_password", v, "a string");
      if (v.get_string().size() > 255)
        return bad("upstream_password", "upstream_password must be 1..255 bytes");
      p.upstream_password = std::string(v.get_string());
    }
  } else if (key == "limits") {
    auto r = parse_limits(p, v);
    if (!r) return tl::unexpected(r.error());
  } else {
    return false;
  }
  return true;
}

ApiResult<std::string> secret(const std::string& field, const json::value& v) {
  if (!v.is_string()) return wrong_type(field, v, "a secret string");
  auto s = proto::parse_secret(v.get_string());
  if (!s) return bad(field, field + ": " + s.error().context);
  return proto::format_hex(*s);
}

// A boost::json::basic_parser handler that only looks for a key given
// twice in one object: json::parse keeps the last silently, so
// {"name":"a","name":"b"} would read as "b" while a proxy in front of the
// API, or a log, may read "a". `duplicate` is the dotted path of the first
// such key ("limits.quota"); the parse stops there.
struct DuplicateKeys {
  static constexpr std::size_t max_array_size = -1;
  static constexpr std::size_t max_object_size = -1;
  static constexpr std::size_t max_string_size = -1;
  static constexpr std::size_t max_key_size = -1;
  using ec_t = boost::system::error_code;

  struct Frame {
    bool object = false;
    std::set<std::string, std::less<>> keys;
    std::string key;  // the member being read
  };
  std::vector<Frame> stack;
  std::string part;  // a key arriving in pieces
  std::optional<std::string> duplicate;

  bool open(bool object) {
    stack.push_back(Frame{object, {}, {}});
    return true;
  }
  bool close() {
    stack.pop_back();
    return true;
  }
  bool on_document_begin(ec_t&) { return true; }
  bool on_document_end(ec_t&) { return true; }
  bool on_array_begin(ec_t&) { return open(false); }
  bool on_array_end(std::size_t, ec_t&) { return close(); }
  bool on_object_begin(ec_t&) { return open(true); }
  bool on_object_end(std::size_t, ec_t&) { return close(); }
  bool on_string_part(json::string_view, std::size_t, ec_t&) { return true; }
  bool on_string(json::string_view, std::size_t, ec_t&) { return true; }
  bool on_key_part(json::string_view s, std::size_t, ec_t&) {
    part.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, ec_t& ec) {
    part.append(s.data(), s.size());
    Frame& f = stack.back();
    f.key = std::move(part);
    part.clear();
    if (f.keys.insert(f.key).second) return true;
    std::string path;
    for (const Frame& g : stack)
      if (g.object) path += (path.empty() ? "" : ".") + g.key;
    duplicate = std::move(path);
    ec = json::error::syntax;
    return false;
  }
  bool on_number_part(json::string_view, ec_t&) { return true; }
  bool on_int64(std::int64_t, json::string_view, ec_t&) { return true; }
  bool on_uint64(std::uint64_t, json::string_view, ec_t&) { return true; }
  bool on_double(double, json::string_view, ec_t&) { return true; }
  bool on_bool(bool, ec_t&) { return true; }
  bool on_null(ec_t&) { return true; }
  bool on_comment_part(json::string_view, ec_t&) { return true; }
  bool on_comment(json::string_view, ec_t&) { return true; }
};

// The dotted path of the first key given twice in one object of `body`,
// or nullopt (also for malformed JSON: json::parse reports that).
std::optional<std::string> duplicate_key(std::string_view body, const json::parse_options& opt) {
  json::basic_parser<DuplicateKeys> p(opt);
  boost::system::error_code ec;
  p.write_some(false, body.data(), body.size(), ec);
  return p.handler().duplicate;
}

}  // namespace

ApiResult<json::object> parse_object(std::string_view body, bool allow_empty) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    if (allow_empty) return json::object{};
    return bad("", "a JSON object body is required");
  }
  boost::system::error_code ec;
  json::parse_options opt;
  opt.max_depth = 16;
  json::value v = json::parse(body, ec, {}, opt);
  if (ec) return bad("", "malformed JSON: " + ec.message());
  if (auto dup = duplicate_key(body, opt)) return bad(*dup, *dup + " is given more than once");
  if (!v.is_object()) return bad("", "the body must be a JSON object");
  return std::move(v.get_object());
}

ApiResult<NewUser> parse_new_user(const json::object& o) {
  NewUser u;
  // The fields shared with PATCH are parsed straight into u.limits; the
  // three that are not limits are moved out of it below.
  UserPatch& common = u.limits;
  bool have_name = false;
  for (const auto& kv : o) {
    const std::string_view key = kv.key();
    const json::value& v = kv.value();
    if (key == "name") {
      if (!v.is_string()) return wrong_type("name", v, "a string");
      if (!supervisor::valid_user_name(v.get_string()))
        return bad("name", "name must be " + std::string(supervisor::kUserNameRule));
      u.name = v.get_string();
      have_name = true;
    } else if (key == "secrets") {
      if (!v.is_array()) return wrong_type("secrets", v, "an array of secret strings");
      if (v.get_array().size() > 16) return bad("secrets", "at most 16 secrets");
      for (std::size_t i = 0; i < v.get_array().size(); ++i) {
        auto s = secret("secrets[" + std::to_string(i) + "]", v.get_array()[i]);
        if (!s) return tl::unexpected(s.error());
        u.secrets.push_back(std::move(*s));
      }
    } else if (key == "tls_domain") {
      auto d = string("tls_domain", v);
      if (!d) return tl::unexpected(d.error());
      if (!d->empty() && !proto::valid_tls_domain(*d))
        return bad("tls_domain", "tls_domain must be 1..182 characters of A-Z a-z 0-9 . -");
      u.tls_domain = std::move(*d);
    } else {
      auto r = common_field(common, key, v);
      if (!r) return tl::unexpected(r.error());
      if (!*r) return bad(std::string(key), "unknown field " + std::string(key));
    }
  }
  if (!have_name) return bad("name", "name is required");
  if (common.enabled) u.enabled = *common.enabled;
  if (common.expires_at) u.expires_at = *common.expires_at;
  if (common.comment) u.comment = std::move(*common.comment);
  if (common.ad_tag) u.ad_tag = std::move(*common.ad_tag);
  if (common.upstreams) u.upstreams = std::move(*common.upstreams);
  if (common.upstream_password) u.upstream_password = std::move(*common.upstream_password);
  common.ad_tag.reset();
  common.upstreams.reset();
  common.upstream_password.reset();
  common.enabled.reset();
  common.expires_at.reset();
  common.comment.reset();
  return u;
}

ApiResult<UserPatch> parse_user_patch(const json::object& o) {
  UserPatch p;
  for (const auto& kv : o) {
    auto r = common_field(p, kv.key(), kv.value());
    if (!r) return tl::unexpected(r.error());
    if (!*r) return bad(std::string(kv.key()), "unknown field " + std::string(kv.key()));
  }
  return p;
}

ApiResult<RotateRequest> parse_rotate(const json::object& o, std::uint32_t default_grace_s) {
  RotateRequest r{{}, default_grace_s};
  for (const auto& kv : o) {
    if (kv.key() == "secret") {
      auto s = secret("secret", kv.value());
      if (!s) return tl::unexpected(s.error());
      r.secret = std::move(*s);
    } else if (kv.key() == "grace_s") {
      auto g = integer("grace_s", kv.value(), 0, 31'536'000);
      if (!g) return tl::unexpected(g.error());
      r.grace_s = static_cast<std::uint32_t>(*g);
    } else {
      return bad(std::string(kv.key()), "unknown field " + std::string(kv.key()));
    }
  }
  return r;
}

ApiResult<void> expect_empty(const json::object& o) {
  if (!o.empty()) {
    const std::string key(o.begin()->key());
    return bad(key, "unknown field " + key);
  }
  return {};
}

}  // namespace mtw::api::detail
