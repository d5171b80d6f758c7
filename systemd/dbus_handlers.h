// The pure layer behind the D-Bus object (dbus_manager.cpp): decoded method
// arguments -> api::Service calls -> results, or a named D-Bus error. No bus
// connection is involved (sdbus::Variant works on a private pseudo
// connection), so every method is tested without a bus. Input validation is
// the HTTP API's (api/json_in.h): a{sv} arguments become the JSON object the
// HTTP API would get, so limits, messages and "change nothing on error" are
// the same on both faces. docs/dbus.md is the reference of every name.
// Not thread-safe: called on the supervisor's io_context thread like the
// Service. `service` is borrowed and must outlive the handlers.
#pragma once

#include <sdbus-c++/Types.h>

#include <boost/json/value.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <tuple>
#include <vector>

#include "api/service.h"

namespace mtw::systemd {

inline constexpr const char* kErrNoSuchUser = "org.mtwarden.Error.NoSuchUser";
inline constexpr const char* kErrUserExists = "org.mtwarden.Error.UserExists";
inline constexpr const char* kErrNoRoom = "org.mtwarden.Error.NoRoom";
inline constexpr const char* kErrInvalidArgument = "org.mtwarden.Error.InvalidArgument";
inline constexpr const char* kErrDeclaredInConfig = "org.mtwarden.Error.DeclaredInConfig";
inline constexpr const char* kErrReloadRejected = "org.mtwarden.Error.ReloadRejected";
inline constexpr const char* kErrFailed = "org.mtwarden.Error.Failed";

// What the caller gets instead of a reply.
struct DbusError {
  std::string name;     // kErr...
  std::string message;  // names the field for InvalidArgument
};
template <class T>
using DbusResult = tl::expected<T, DbusError>;

using VariantMap = std::map<std::string, sdbus::Variant>;
// ListUsers: (name, enabled, state, throttled).
using UserRow = sdbus::Struct<std::string, bool, std::string, bool>;
// GetUsage: (date "YYYY-MM-DD" or "YYYY-MM", bytes_up, bytes_down).
using UsageRow = sdbus::Struct<std::string, std::uint64_t, std::uint64_t>;
// GetMaskProfiles: [mask] probing on, and one a{sv} per fake-TLS domain.
using MaskProfilesReply = std::tuple<bool, std::vector<VariantMap>>;

// A signal to emit for a LiveEvent; which fields are used depends on `member`:
// UserThrottled(user, reason, detail), UserUnthrottled(user, reason),
// QuotaWarning(user, percent, used_bytes, quota_bytes),
// WorkerRestarted(user, restarts), UserExpired(user), UsageReset(user, reason),
// UpstreamHealth(user, upstream (in reason), up, detail).
struct DbusSignal {
  std::string member;
  std::string user;
  std::string reason;  // "quota" | "unique_ips"; UpstreamHealth: the upstream's name
  bool up = false;     // UpstreamHealth
  std::string detail;
  std::uint32_t number = 0;  // percent (QuotaWarning) or restarts (WorkerRestarted)
  std::uint64_t used_bytes = 0, quota_bytes = 0;
};

// JSON (as the HTTP API renders it) -> a{sv}: objects become a{sv}, strings
// s, booleans b, signed integers x, unsigned t, doubles d; arrays of objects
// aa{sv}, other arrays as (strings) or av; null members are left out.
VariantMap to_variant_map(const boost::json::object& o);
// a{sv} -> a JSON object: integers of any D-Bus width (y n q i u x t) become
// JSON integers, b booleans, s strings, d numbers, as arrays of strings.
// Other types are InvalidArgument naming the key.
DbusResult<boost::json::object> to_json_object(const VariantMap& m);

class DbusHandlers {
 public:
  explicit DbusHandlers(api::Service& service) : service_(service) {}

  DbusResult<std::vector<UserRow>> list_users();
  DbusResult<VariantMap> get_user(const std::string& name);
  // `options`: secrets (as), tls_domain, enabled, expires_at, comment and the
  // limit keys of set_limits. Returns what get_user returns.
  DbusResult<VariantMap> add_user(const std::string& name, const VariantMap& options);
  DbusResult<void> remove_user(const std::string& name);
  DbusResult<void> set_enabled(const std::string& name, bool enabled);
  // Keys: rate_up, rate_down, throttle_rate, quota, period, anchor_day,
  // warn_percent, max_connections, max_unique_ips, idle_teardown_s,
  // on_demand, bandwidth_weight ("default" = inherit [defaults]) and
  // expires_at ("never").
  DbusResult<void> set_limits(const std::string& name, const VariantMap& limits);
  DbusResult<VariantMap> get_status(const std::string& name);
  // by: "day" | "month"; from/to: dates as GET /v1/users/{name}/usage takes
  // them ("" = that API's default range).
  DbusResult<std::vector<UsageRow>> get_usage(const std::string& name, const std::string& by,
                                              const std::string& from, const std::string& to);
  DbusResult<void> reload();
  // As GET /v1/mask-profiles: (probing, profiles). Each profile holds the
  // HTTP API's members; `flight` is a(tt) (min, max payload bytes per
  // record) instead of JSON's array of pairs.
  DbusResult<MaskProfilesReply> mask_profiles();
  // As GET /v1/upstreams: one dictionary per [[upstream]] with the HTTP
  // API's members.
  DbusResult<std::vector<VariantMap>> upstreams();

  api::ServerStatus server_status() { return service_.server_status(); }

  // The signal for an event, or nullopt for kinds D-Bus does not carry.
  std::optional<DbusSignal> signal_for(const api::LiveEvent& e);

 private:
  api::Service& service_;
};

}  // namespace mtw::systemd
