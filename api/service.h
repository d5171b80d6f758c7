// The management model shared by the HTTP API (api/), the CLI (through the
// API) and D-Bus (systemd/): what an operator can read and change. The
// supervisor implements it (daemon/daemon_service.cpp); the API layer
// only validates input, maps it to these calls and renders the results.
// Every mutating call is durable in the store before it returns, takes
// effect live, and touches only the user it names. On error nothing changed.
// Not thread-safe: called on the supervisor's io_context thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "supervisor/mask_profile_view.h"
#include "supervisor/policy.h"
#include "supervisor/presence.h"
#include "supervisor/store.h"

namespace mtw::api {

using base::Result;
using supervisor::UnixSeconds;

struct SecretInfo {
  std::string secret;                     // canonical hex (proto::format_hex)
  std::optional<UnixSeconds> expires_at;  // set while a rotated-out secret is in its grace period
};

// A user as stored, plus its secrets with their grace deadlines. `user`
// holds every secret still valid (secrets[i] <-> secret_info[i]).
struct UserRecord {
  supervisor::StoredUser user;
  std::vector<SecretInfo> secret_info;
  supervisor::Limits limits;  // resolved: [defaults] + the user's overrides
};

struct CellInfo {
  std::string netns, host_if, ipv4;
  std::uint64_t shaper_up_bps = 0, shaper_down_bps = 0;  // what tc applies now
};

struct UserStatus {
  std::string name;
  std::int64_t id = 0;
  std::string state;        // disabled | idle | starting | running | backoff | failed
  std::string fail_reason;  // when failed
  // direct | middle | fallback (supervisor::middle_mode_name): whether the
  // user's new tagged connections go through the middle proxies now.
  std::string mode = "direct";
  bool enabled = true;
  std::optional<UnixSeconds> expires_at;
  int worker_pid = 0;
  std::uint32_t worker_uid = 0;
  std::uint32_t restarts = 0;
  std::optional<CellInfo> cell;
  std::uint32_t connections = 0;        // open
  std::uint32_t held = 0;               // waiting in the hold queue
  std::uint64_t refused = 0;            // hold queue full / hold expired -> mask host
  std::uint64_t connections_total = 0;  // handed to the worker since start
  std::uint32_t unique_ips = 0;
  // A connection is open now (relaying, handed over or held); last_seen is
  // then the current time, else the end of the user's last connection as
  // the supervisor learnt it; none: not seen since the supervisor started.
  bool online = false;
  std::optional<UnixSeconds> last_seen;
  supervisor::QuotaStatus quota;
  bool throttled = false;
  bool throttled_quota = false, throttled_unique_ips = false;
  std::string throttle_reason;
  std::uint64_t rate_up_bps = 0, rate_down_bps = 0;          // limits in force (0 = unlimited)
  std::uint64_t measured_up_bps = 0, measured_down_bps = 0;  // last sweep
  std::uint64_t share_up_bps = 0, share_down_bps = 0;  // of the host bandwidth budget (0 = none)
  std::uint32_t bandwidth_weight = 1;                  // its weight in that budget's split
  std::uint64_t bytes_up_total = 0, bytes_down_total = 0;  // veth, since the supervisor started
  std::uint64_t egress_dropped = 0;  // packets the cell's egress filter dropped, since start
  // The worker's last report (detail only, never billing), ipc::Counter
  // order. Names are static (ipc::counter_name), so views.
  std::vector<std::pair<std::string_view, std::uint64_t>> worker_counters;
  // The upstream names in force for the user (its own list, else
  // [egress] upstreams; empty: direct), and whether they are inherited.
  std::vector<std::string> upstream_names;
  bool upstreams_inherited = true;
  // The worker's egress upstreams (its last report); empty: direct.
  struct Upstream {
    std::string name;
    bool up = true;
    std::uint64_t connects = 0, failures = 0, bytes_up = 0, bytes_down = 0, marked_down = 0;
  };
  std::vector<Upstream> upstreams;
};

// The client addresses of a user with a connection open now
// (GET /v1/users/{name}/ips): personal data, shown only where asked for.
struct ClientIps {
  std::string name;
  // Each entry's key is what max_unique_ips counts: an IPv4 address, an
  // IPv6 address's /ipv6_prefix ([connections] ipv6_source_prefix).
  unsigned ipv6_prefix = 64;
  // The worker had more distinct addresses than its report carries
  // (ipc::control::kMaxReportClients): the list is not complete.
  bool truncated = false;
  std::vector<supervisor::OpenIp> ips;
};

struct ServerStatus {
  std::string version;
  UnixSeconds started_at = 0;
  std::uint64_t uptime_s = 0;
  std::vector<std::string> listeners;
  std::uint32_t users_total = 0, users_running = 0, users_throttled = 0, users_failed = 0;
  std::uint32_t cells = 0;
  std::uint32_t connections = 0;
  int gate_pid = 0;
  bool gate_ready = false;
  std::uint32_t gate_restarts = 0;
  // Handshake failures by reason, masked, ...; names static as above.
  std::vector<std::pair<std::string_view, std::uint64_t>> gate_counters;
  std::uint64_t masked_total = 0;           // connections handed back to the gate for masking
  std::uint64_t handoffs_total = 0;         // connections handed to workers (both paths)
  std::uint64_t direct_handoffs_total = 0;  // of which the gate sent over lanes
  std::string memory_bound;                 // none | cgroup2 | rlimit
  std::uint64_t sweeps = 0;
  std::uint64_t sweep_cpu_ns_total = 0;
  // Webhook deliveries (events x receivers); all 0 without [api] webhooks.
  std::uint64_t webhooks_delivered = 0, webhooks_failed = 0, webhooks_dropped = 0;
  std::uint64_t webhook_failed_attempts = 0;
  // Middle-proxy material (supervisor/middle_material.h); all 0 / false
  // until a tag is in use.
  struct Middle {
    bool wanted = false;                 // some user, listener or [middle] ad_tag has a tag
    bool ready = false;                  // a proxy secret and a config are at hand
    std::uint64_t generation = 0;        // changes of the material since start
    UnixSeconds changed_at = 0;          // last change (0: none since start)
    UnixSeconds last_success_at = 0;     // last round in which every source answered well
    std::uint64_t refreshes = 0;         // rounds finished
    std::uint64_t refresh_failures = 0;  // sources that failed (the last good copy was kept)
    std::string last_error;              // of the last round; "" when it was clean
  } middle;
  // The mask profile of each fake-TLS domain (GET /v1/mask-profiles, /metrics).
  supervisor::MaskProfilesView mask_profiles;
  // Every [[upstream]] with what the users' workers last reported of it
  // (GET /v1/upstreams, D-Bus GetUpstreams, /metrics): how many users'
  // upstreams in force name it, how many running workers count it up or
  // down, and their counters summed (since each worker started).
  struct Upstream {
    std::string name;
    std::string type;     // direct | socks4 | socks5
    std::string address;  // "IP:PORT"; "" for direct
    std::string auth;     // none | fixed | user-name | user-secret
    std::uint32_t weight = 1;
    std::string source;  // direct: "ADDR[,ADDR]" or "interface NAME"; "" = masquerade
    std::uint32_t users = 0;
    std::uint32_t workers_up = 0, workers_down = 0;
    std::uint64_t connects = 0, failures = 0, marked_down = 0, bytes_up = 0, bytes_down = 0;
  };
  std::vector<Upstream> upstreams;
  // The hosts sharing the store (GET /v1/fleet, /metrics): read from the
  // store at most every kFleetReadInterval by the sweep, not per request.
  struct Fleet {
    std::string backend;      // "sqlite" | "postgresql"
    std::string this_host;    // [store] host_name
    UnixSeconds read_at = 0;  // 0: not read yet
    std::string last_error;   // of the last read; "" when it worked
    std::vector<supervisor::HostRecord> hosts;
  } fleet;
};

struct LiveEvent {
  std::uint64_t seq = 0;  // increases by one per event
  UnixSeconds at = 0;
  std::string user;  // "" for server events
  std::string kind;  // throttled, unthrottled, quota_warned, quota_exceeded, worker_restarted,
                     // user_expired, ...
  std::string detail;
};

struct Links {
  std::string host;
  std::vector<std::uint16_t>
      ports;  // one per distinct listener port (or the configured public_port)
  // Per valid secret: tg:// and https://t.me links for each port.
  std::vector<std::string> tg, https;
};

// Field-by-field change of a user; unset = keep. For limits, an inner
// nullopt means "inherit [defaults] again".
// The limit fields are supervisor::LimitPatch's (applied and checked by
// supervisor::apply_limit_patch / check_limit_overrides).
struct UserPatch : supervisor::LimitPatch {
  std::optional<bool> enabled;
  std::optional<std::optional<UnixSeconds>> expires_at;
  std::optional<std::string> comment;
  // Canonical 32 hex digits (supervisor::format_ad_tag); inner "" = none.
  std::optional<std::string> ad_tag;
  // Upstream names ([[upstream]]): inner nullopt = [egress] upstreams
  // again, an empty list = direct. Live for new connections.
  std::optional<std::optional<std::vector<std::string>>> upstreams;
  // For auth = "user-secret" upstreams; inner "" = none. Write-only.
  std::optional<std::string> upstream_password;
};

struct NewUser {
  std::string name;
  std::vector<std::string> secrets;  // empty: one fake-TLS secret is generated with `tls_domain`
  std::string tls_domain;            // empty: [server] first_user_domain
  bool enabled = true;
  std::optional<UnixSeconds> expires_at;
  std::string comment;
  std::string ad_tag;  // canonical 32 hex digits; "" = none
  // nullopt: [egress] upstreams; empty: direct.
  std::optional<std::vector<std::string>> upstreams;
  std::string upstream_password;  // "" = none
  UserPatch limits;               // only the limit fields are used
};

// A reload that was taken: the changed settings that wait for a restart
// (their configuration names, e.g. "[[listener]]"); everything else is in
// force, for running workers' new connections too.
struct ReloadOutcome {
  std::vector<std::string> restart_needed;
};

// Errors: kNotFound (no such user), kExists (name or secret taken),
// kBadInput (invalid value; context names the field), kPermission (the user
// is declared in the configuration file: change it there), kInternal.
class Service {
 public:
  virtual ~Service() = default;

  virtual Result<std::vector<UserRecord>> list_users() = 0;
  virtual Result<UserRecord> get_user(std::string_view name) = 0;
  virtual Result<UserRecord> create_user(const NewUser& u) = 0;
  virtual Result<UserRecord> update_user(std::string_view name, const UserPatch& patch) = 0;
  virtual Result<void> delete_user(std::string_view name) = 0;
  // Adds `new_secret` (empty: generate one of the same kind/domain as the
  // newest secret) and lets the others expire after `grace_s` seconds
  // (0 = at once). Returns the updated record.
  virtual Result<UserRecord> rotate_secret(std::string_view name, std::string_view new_secret,
                                           std::uint32_t grace_s) = 0;
  virtual Result<void> reset_usage(std::string_view name) = 0;

  virtual Result<UserStatus> user_status(std::string_view name) = 0;
  virtual std::vector<UserStatus> all_status() = 0;
  // The user's open client addresses as of its worker's last report (which
  // the supervisor asks for every few sweeps) plus the connections handed
  // over since.
  virtual Result<ClientIps> client_ips(std::string_view name) = 0;
  virtual Result<std::vector<supervisor::DayUsage>> daily_usage(std::string_view name,
                                                                UnixSeconds from,
                                                                UnixSeconds to) = 0;
  virtual Result<std::vector<supervisor::MonthUsage>> monthly_usage(std::string_view name,
                                                                    UnixSeconds from,
                                                                    UnixSeconds to) = 0;
  virtual ServerStatus server_status() = 0;
  virtual Result<Links> links(std::string_view name) = 0;
  // Newest last; only events with seq > `after`, at most `limit`.
  virtual std::vector<LiveEvent> events(std::uint64_t after, std::size_t limit) = 0;
  // Same as SIGHUP; the error carries the reason when the file was rejected.
  virtual Result<ReloadOutcome> reload() = 0;
};

}  // namespace mtw::api
