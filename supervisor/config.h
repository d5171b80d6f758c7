// The TOML configuration: model, loader and validation (docs/configuration.md
// is the reference for every key). Loading is pure apart from reading the
// file: no sockets are bound and no directories created here, so a reload can
// be validated completely before anything changes. Every error names
// FILE:LINE:COLUMN and a reason; unknown keys are errors, because a typo that
// silently falls back to a default is worse than a refusal to start.
// Thread-safe: plain values.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "proto/dc_table.h"
#include "proto/egress.h"
#include "proto/identify.h"
#include "proto/mask_route.h"
#include "proto/secret.h"
#include "supervisor/limits.h"
#include "supervisor/middle_material.h"
#include "supervisor/store.h"
#include "supervisor/user_name.h"

namespace mtw::supervisor {

struct SourcePos {
  std::string file;
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  // "FILE:LINE:COL"
  std::string to_string() const;
};

// An IPv4 or IPv6 network, host bits zero.
struct Cidr {
  bool v6 = false;
  std::array<std::uint8_t, 16> addr{};  // network byte order; IPv4 uses the first 4
  int prefix = 0;
  friend bool operator==(const Cidr&, const Cidr&) = default;
};
// "10.200.0.0/16", "fd6d:7477:6172::/48". Rejects set host bits (a common
// typo that would make the pool mean something else than written).
[[nodiscard]] base::Result<Cidr> parse_cidr(std::string_view text);
std::string format_cidr(const Cidr& c);

struct ServerConfig {
  std::string state_dir = "/var/lib/mtwarden";  // SQLite store lives here
  std::string run_dir = "/run/mtwarden";        // control sockets, pid files
  std::string log_level = "info";               // trace..critical, off
  std::string public_host;                      // host in client links; empty = auto-detect
  std::uint16_t public_port = 0;                // port in links; 0 = first listener's port
  // http:// URL answering this host's public address, asked once at start
  // when public_host is empty; "" = no lookup (links then use the first
  // address of a local interface).
  std::string public_host_lookup;
  bool create_first_user = true;  // no user at all at start: create one and print its links
  std::string first_user_domain = "www.google.com";  // fake-TLS domain of that user's ee secret
  // "auto": the journal (native entries with USER=/CELL=/EVENT= fields) when
  // stderr is the journal's stream, else stderr; "journal"; "stderr".
  std::string log_target = "auto";
};

struct ListenerConfig {
  proto::Endpoint bind;  // literal address, normalised ("::" not "0::0")
  proto::AllowedProtocols protocols;
  std::optional<proto::Endpoint> mask;  // this listener's mask target; unset: [mask]'s
  // Clients of this listener whose user has no tag of its own go through
  // the middle proxies with this one (unset: [middle] ad_tag).
  std::optional<proto::AdTag> ad_tag;
  SourcePos pos;
};

// docs/configuration.md [mask] and docs/masking.md: with nothing set, a
// connection that is not ours goes to its fake-TLS domain on port 443.
struct MaskConfig {
  bool enabled = true;                     // off: unrecognised clients are read and dropped
  std::optional<proto::Endpoint> address;  // replaces every domain's DOMAIN:443 default
  // [mask.domains]: lower-case fake-TLS domain -> its own target.
  std::vector<std::pair<std::string, proto::Endpoint>> domains;
  proto::UnknownSniAction unknown_sni = proto::UnknownSniAction::kMask;
  std::uint32_t connect_timeout_ms = 5'000;
  std::uint32_t discard_timeout_ms = 30'000;  // without a reachable mask: how long to keep reading
  // The mask profile (docs/masking.md): each domain's target is probed at
  // start and then every probe_interval_s plus up to probe_jitter_s.
  bool probe = true;
  std::uint32_t probe_interval_s = 86'400;
  std::uint32_t probe_jitter_s = 3'600;
  std::uint32_t probe_handshakes = 16;  // per probe: the spread of the first flight and its latency
  // A handshake still undecided this long after it arrived is mirrored to
  // its mask (conn::Settings::mask_mirror_after_ms); 0 = off.
  std::uint32_t mirror_after_ms = 250;
  // The fake-TLS answer in segments of at most this many bytes
  // (worker --flight-segment); 0 = off: one write, as the mask sends it.
  std::uint32_t flight_segment_bytes = 0;
  friend bool operator==(const MaskConfig&, const MaskConfig&) = default;
};

struct DcOverride {
  std::int16_t dc = 0;
  std::vector<proto::Endpoint> endpoints;  // tried in order (IPv6 first with prefer_ipv6)
  friend bool operator==(const DcOverride&, const DcOverride&) = default;
};

struct TelegramConfig {
  std::vector<DcOverride> dc;  // replaces the built-in addresses of these DCs
  bool prefer_ipv6 = false;
  bool fast_mode = true;
};

// Middle-proxy mode (ad tags): the material's sources and the workers'
// settings. A connection's tag: its user's, else its listener's, else
// ad_tag here; none of them set = direct to the DC.
struct MiddleConfig {
  std::optional<proto::AdTag> ad_tag;
  std::array<MaterialSource, kMaterialKinds> sources = {
      MaterialSource{MaterialSource::Type::kUrl, std::string(kDefaultSecretUrl)},
      MaterialSource{MaterialSource::Type::kUrl, std::string(kDefaultConfigUrl)},
      MaterialSource{MaterialSource::Type::kUrl, std::string(kDefaultConfigV6Url)}};
  std::uint32_t refresh_interval_s = 86'400;
  std::uint32_t fetch_timeout_ms = 10'000;
  std::uint32_t pool = 2;  // middle-proxy connections per cluster and worker
  std::uint32_t stall_timeout_ms = 5'000;
  std::string public_ip;  // our address as the middle proxies see it; "" = detected
  bool fallback = true;   // middle proxies unreachable: new connections go direct
  friend bool operator==(const MiddleConfig&, const MiddleConfig&) = default;
};

struct CellsConfig {
  Cidr ipv4_pool;                   // default 10.200.0.0/16, set by the loader
  int ipv4_cell_prefix = 30;        // each cell's veth link: /30 (or /31)
  std::optional<Cidr> ipv6_prefix;  // ULA (fc00::/7); each cell gets a /64; unset = no IPv6
  std::string netns_dir = "/run/netns";
  std::string name_prefix = "mtw";    // netns and interface names; <= 6 chars (IFNAMSIZ)
  std::uint32_t uid_first = 200'000;  // gate uses uid_first, workers the next ones
  std::uint32_t uid_count = 65'536;
  std::uint32_t gid_first = 200'000;
  std::uint64_t worker_nofile = 4'096;
  std::uint64_t worker_memory_max_bytes = 64ull << 20;  // 0 = no bound
  std::uint64_t gate_memory_max_bytes = 512ull << 20;   // RLIMIT_DATA of the gate; 0 = no bound
  std::string cgroup_dir;  // cgroup v2 parent for workers; empty = the supervisor's own
  bool nat = true;         // masquerade cell traffic leaving the host (off: routed as is)
  // net.ipv6.conf.all.forwarding=1, so the cells' IPv6 reaches IPv6 DCs
  // (off by default: it also stops router-advertisement learning on every
  // host interface; docs/cells.md).
  bool ipv6_forwarding = false;
  friend bool operator==(const CellsConfig&, const CellsConfig&) = default;
};

struct TimeoutsConfig {
  std::uint32_t handshake_ms = 10'000;
  std::uint32_t dc_connect_ms = 10'000;
  std::uint32_t client_idle_ms = 300'000;
  std::uint32_t worker_ready_ms = 5'000;
  std::uint32_t shutdown_grace_ms = 5'000;
  std::uint32_t restart_backoff_min_ms = 250;
  std::uint32_t restart_backoff_max_ms = 30'000;
  std::uint32_t crash_loop_window_ms = 60'000;
  std::uint32_t crash_loop_restarts = 5;  // this many crashes in the window: user marked failed
};

// [bandwidth]: the host's budget per direction, split max-min fair among
// the users moving traffic each sweep (supervisor/bandwidth.h); TCP payload
// bits per second like the users' rates; 0 = no budget.
struct BandwidthConfig {
  std::uint64_t up_bps = 0;
  std::uint64_t down_bps = 0;
  friend bool operator==(const BandwidthConfig&, const BandwidthConfig&) = default;
};

struct AccountingConfig {
  std::uint32_t sweep_interval_ms = 1'000;
  std::uint32_t history_days = 400;
};

// The gate's admission limits (docs/gate.md): unfinished handshakes per
// source and per subnet, how sources are keyed, and the silent deadline.
struct GateAdmissionConfig {
  std::uint32_t source_handshakes = 128;  // per IPv4 address / IPv6 /ipv6_source_prefix; 0 = off
  std::uint32_t subnet_handshakes = 512;  // per IPv4 /ipv4_subnet_prefix / IPv6 /ipv6_subnet_prefix
  std::uint32_t ipv6_source_prefix = 64;
  std::uint32_t ipv6_subnet_prefix = 48;
  std::uint32_t ipv4_subnet_prefix = 24;
  std::uint32_t silent_timeout_ms = 3'000;  // no byte by then: the handshake deadline
  friend bool operator==(const GateAdmissionConfig&, const GateAdmissionConfig&) = default;
};

struct ConnectionsConfig {
  std::uint32_t global_budget = 0;       // all users' connections together; 0 = unlimited
  std::uint32_t hold_queue_length = 16;  // per user: held handshakes beyond the cap
  std::uint32_t hold_timeout_ms = 5'000;
  std::uint32_t rebalance_interval_ms = 3'000;  // fair-share recomputation
  // A user's unique client IPs: distinct addresses that opened a connection
  // within this window (or still have one handed over in it).
  std::uint32_t unique_ip_window_s = 300;
  std::uint32_t per_ip_rate = 30;  // gate: new connections/s from one client IP (burst 2x); 0 = off
  bool direct_lanes = true;        // gate hands clients straight to workers (docs/supervisor.md)
  // The gate's replay cache survives restarts in state_dir/replay.cache.
  bool replay_persist = true;
  GateAdmissionConfig admission;
};

struct ApiConfig {
  std::string socket;                  // Unix socket path; "" = <run_dir>/api.sock
  std::string socket_group;            // group owning the socket (mode 0660); "" = root's
  std::optional<proto::Endpoint> tcp;  // optional TCP listener (bearer token required)
  bool allow_public = false;           // permit a non-loopback tcp address
  std::uint64_t body_limit = 64 * 1024;
  std::uint32_t request_timeout_ms = 10'000;
  std::uint32_t secret_grace_s = 86'400;  // rotate: how long the old secret keeps working
  std::uint32_t events_kept = 1'000;      // in-memory ring of recent events
  std::vector<std::string> webhooks;      // http:// or https:// URLs receiving each event as JSON
  std::uint32_t webhook_timeout_ms = 5'000;
  std::uint32_t webhook_retries = 3;
  std::string webhook_ca_file;  // PEM bundle trusted for https webhooks besides the system store
};

struct DbusConfig {
  bool enabled = true;         // serve org.mtwarden.Manager1 (no bus: a warning, not an error)
  std::string bus = "system";  // "system" ($DBUS_SYSTEM_BUS_ADDRESS honoured) or "session"
};

// How a SOCKS upstream authenticates a user's connections (docs/configuration.md).
enum class UpstreamAuth {
  kNone,        // SOCKS5 "no authentication"; SOCKS4 an empty user id
  kFixed,       // username (+ password for SOCKS5) from the [[upstream]] entry
  kUserName,    // username = the user's name, password = the user's name too
  kUserSecret,  // SOCKS5: username = the user's name, password = its upstream_password
};
// "none", "fixed", "user-name", "user-secret": the configuration's words.
std::string_view upstream_auth_name(UpstreamAuth a) noexcept;

struct UpstreamConfig {
  std::string name;
  proto::UpstreamType type = proto::UpstreamType::kDirect;
  proto::Endpoint address;  // SOCKS: an IP literal and port
  UpstreamAuth auth = UpstreamAuth::kNone;
  std::string username, password;  // kFixed
  std::uint32_t weight = 1;
  // Direct only: the public address the user's cell leaves from (per-cell
  // SNAT, netns/snat.h), one per family at most, or the interface whose
  // addresses are taken; all empty: masquerade as usual.
  std::string source4, source6, interface;
  bool has_source() const noexcept {
    return !source4.empty() || !source6.empty() || !interface.empty();
  }
  SourcePos pos;
};

// [egress]: the upstreams of users that name none, and the health policy.
struct EgressConfig {
  std::vector<std::string> upstreams;  // empty: such users dial directly
  proto::EgressPolicy policy;
};

struct UserConfig {
  std::string name;
  std::vector<proto::Secret> secrets;  // at least one
  bool enabled = true;
  std::optional<std::int64_t> expires_at;  // unix seconds UTC; unusable from then on
  std::string comment;
  std::optional<proto::AdTag> ad_tag;  // unset: the listener's or [middle] ad_tag
  LimitOverrides overrides;
  // Upstream names; unset: [egress] upstreams; an empty list: direct.
  std::optional<std::vector<std::string>> upstreams;
  std::string upstream_password;  // for auth = "user-secret" upstreams
  SourcePos pos;
};

struct Config {
  std::string source;  // file name used in messages
  ServerConfig server;
  std::vector<ListenerConfig> listeners;
  MaskConfig mask;
  TelegramConfig telegram;
  CellsConfig cells;
  TimeoutsConfig timeouts;
  AccountingConfig accounting;
  BandwidthConfig bandwidth;
  ConnectionsConfig connections;
  ApiConfig api;
  DbusConfig dbus;
  MiddleConfig middle;
  StoreConfig store;  // [store]: the engine and this host's name
  Limits defaults;
  std::vector<UserConfig> users;
  std::vector<UpstreamConfig> upstreams;
  EgressConfig egress;

  Limits limits_for(const UserConfig& u) const { return resolve_limits(defaults, u.overrides); }
  const UserConfig* find_user(std::string_view name) const;
};

// The gate's and the workers' mask routes from [mask] and the listeners'
// mask keys (listener ids are positions in `listeners`). Masking off gives
// routes with no target at all (read and discard).
proto::MaskRoutes mask_routes(const Config& c);
// The same as mtwarden-gate / mtwarden-worker flags; `listeners` false for
// the worker (it has no listener ids).
std::vector<std::string> mask_flags(const Config& c, bool listeners);
// The worker flags a running worker takes live (worker/options.h,
// is_live_flag): timeouts, fast mode, the DC table and prefer_ipv6, the
// mask routes. The same list starts a worker and, after a reload that
// changes it, goes to running workers in a settings message, so the two
// can never disagree.
std::vector<std::string> worker_live_flags(const Config& c);

// Parses and validates `text`; `source_name` prefixes every message. On
// failure the error (kBadInput) lists every problem found, one per line,
// each as "FILE:LINE:COL: reason". Never throws.
[[nodiscard]] base::Result<Config> parse_config(std::string_view text,
                                                std::string_view source_name);
// Reads `path` (kSyscall with errno if unreadable), then parse_config.
[[nodiscard]] base::Result<Config> load_config(const std::string& path);

// One user's upstream assignment, as the store keeps it (StoredUser): its
// own list (nullopt: [egress] upstreams; empty: direct) and its password
// for auth = "user-secret" upstreams ("" = none).
struct UpstreamAssignment {
  std::optional<std::vector<std::string>> upstreams;
  std::string password;
};
// The assignment the file gives user `user_name` (none declared: inherit).
UpstreamAssignment file_assignment(const Config& c, std::string_view user_name);
// The upstream names that apply: the assignment's list, else [egress] upstreams.
const std::vector<std::string>& assigned_names(const Config& c, const UpstreamAssignment& a);

// The egress of user `user_name` with assignment `a` and its credentials
// resolved: the one builder of a worker's egress, at its start and for the
// live egress message. kBadInput (never naming a credential) when a name is
// not an [[upstream]] of `c`, or a "user-secret" upstream applies and the
// assignment has no password.
[[nodiscard]] base::Result<proto::EgressSpec> egress_for(const Config& c,
                                                         std::string_view user_name,
                                                         const UpstreamAssignment& a);
// The same with the file's assignment (file_assignment).
[[nodiscard]] base::Result<proto::EgressSpec> egress_for(const Config& c,
                                                         std::string_view user_name);
// Checks an assignment given through the API against `c` before anything is
// stored: the rules the loader applies to users in the file (every name an
// [[upstream]], none twice, a password of 1..255 bytes wherever a
// "user-secret" upstream applies), and no direct upstream with a source or
// interface in an explicit list (a cell's source address comes from the
// file: assign those there). kBadInput whose context starts with the field
// ("upstreams: ..." or "upstream_password: ...").
[[nodiscard]] base::Result<void> check_assignment(const Config& c, std::string_view user_name,
                                                  const UpstreamAssignment& a);

// Where user `user_name`'s cell leaves the host: the source address or
// interface of the first direct upstream with one in the user's list (the
// loader makes all of them agree). nullopt: masquerade as usual.
struct EgressSource {
  std::string source4, source6, interface;
  friend bool operator==(const EgressSource&, const EgressSource&) = default;
};
std::optional<EgressSource> egress_source(const Config& c, std::string_view user_name);
// The same rule for a list of upstream names (an assignment in force, say
// one made through the API: assigned_names()).
std::optional<EgressSource> egress_source(const Config& c, const std::vector<std::string>& names);

// The commented default configuration shipped in the binary
// (supervisor/default_config.toml); installed when no file exists.
std::string_view default_config_text() noexcept;

// True when `mode` (the st_mode of the file `c` was read from) lets every
// local user read it while it declares user secrets (a worker, running as
// its own uid, could read every other user's): the supervisor warns at start.
bool secrets_readable_by_others(const Config& c, unsigned mode) noexcept;

// How many cells the pools and the uid range can hold.
std::uint64_t ipv4_cell_capacity(const CellsConfig& c) noexcept;
std::uint64_t ipv6_cell_capacity(const CellsConfig& c) noexcept;  // 0 when IPv6 is off
std::uint64_t uid_capacity(const CellsConfig& c) noexcept;        // workers (gate excluded)
// Users the cells can hold at once: the least of the uid range and the
// IPv4 (and, when on, IPv6) pools.
std::uint64_t user_capacity(const CellsConfig& c) noexcept;

}  // namespace mtw::supervisor
