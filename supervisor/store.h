// The persistent state of the supervisor: users added at run time (and rows
// for users declared in the TOML file, so that usage has an owner), usage
// per user per quota period, per-user per-day totals kept for the configured
// history (>= 400 days), and an audit trail of events.
//
// Two engines behind one schema ([store] backend): an SQLite file (the
// default, one host) or a PostgreSQL database that several hosts share
// (docs/fleet.md). Usage rows carry the name of the host that recorded
// them; reads sum every host's rows, so quotas and history are fleet totals.
// Each sweep carries a per-host sequence number stored in the same
// transaction, so a sweep is never counted twice (see apply_sweep).
//
// SQLite: WAL journal with synchronous=NORMAL: a process crash (kill -9)
// loses nothing committed, so at most the sweep in progress; a power loss
// may lose the last few commits (the WAL is synced at checkpoints, not per
// commit). The file is created 0600 because it holds the users' secrets.
// PostgreSQL: durability is the server's; calls block for one round trip
// per statement (the supervisor's thread waits for them).
// Every write is one transaction: on error nothing of it remains.
// Not thread-safe: use from one thread (the supervisor's io_context).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "supervisor/limits.h"
#include "supervisor/policy.h"

namespace mtw::supervisor {

inline constexpr int kSchemaVersion = 7;

using UserId = std::int64_t;

class StoreBackend;  // store_backend.h: the engine behind the Store

enum class StoreEngine { kSqlite, kPostgresql };

// [store] of the configuration (docs/configuration.md).
struct StoreConfig {
  StoreEngine backend = StoreEngine::kSqlite;
  // libpq connection string ("host=db.example port=5432 dbname=mtwarden
  // user=mtwarden sslmode=verify-full"); never holds the password.
  std::string postgresql;
  // Absolute path of a file holding the PostgreSQL password (first line).
  std::string password_file;
  // This host's name in the usage rows; empty = the system's hostname.
  std::string host_name;
};

// The system's hostname (gethostname), or "localhost" if it has none.
std::string default_host_name();
// Checks a host name: 1..64 of [A-Za-z0-9._-]. kBadInput names the rule.
[[nodiscard]] base::Result<void> check_host_name(std::string_view name);
// Checks a libpq connection string without connecting: it must parse, and
// must not carry a password (that belongs in password_file). kBadInput.
[[nodiscard]] base::Result<void> check_postgresql_conninfo(const std::string& conninfo);

enum class UserOrigin { kConfig, kRuntime };

struct StoredUser {
  UserId id = 0;  // assigned by add_user
  std::string name;
  // Canonical text form (proto::format_hex); unique across all users.
  std::vector<std::string> secrets;
  // Parallel to `secrets` (missing entries = no expiry): a rotated-out
  // secret keeps working until then (the API's grace period).
  std::vector<std::optional<UnixSeconds>> secret_expires;
  bool enabled = true;
  std::optional<UnixSeconds> expires_at;
  std::string comment;
  LimitOverrides overrides;  // NULL columns = inherit [defaults]
  // Canonical text (format_ad_tag); empty = none of its own.
  std::string ad_tag;
  // Upstream names ([[upstream]]) its connections go through: nullopt =
  // [egress] upstreams, an empty list = direct (schema 6).
  std::optional<std::vector<std::string>> upstreams;
  // SOCKS5 password for auth = "user-secret" upstreams; empty = none. A
  // credential: never returned by the API, never logged.
  std::string upstream_password;
  UserOrigin origin = UserOrigin::kRuntime;
  UnixSeconds created_at = 0;
};

// Bytes moved by one user since the previous sweep, and the quota period
// they count towards (from period_bounds()).
struct UsageDelta {
  UserId user = 0;
  std::uint64_t bytes_up = 0;
  std::uint64_t bytes_down = 0;
  PeriodBounds period;
};

struct Usage {
  std::uint64_t bytes_up = 0;
  std::uint64_t bytes_down = 0;
  std::uint64_t total() const noexcept { return bytes_up + bytes_down; }
  friend bool operator==(const Usage&, const Usage&) = default;
};

struct DayUsage {
  std::int64_t day = 0;  // days since 1970-01-01 (UTC)
  Usage usage;
};

struct MonthUsage {
  int year = 0;
  unsigned month = 0;  // 1..12
  Usage usage;
};

// A user's quota period, as Store::period_usages reads it.
struct PeriodKey {
  UserId user = 0;
  UnixSeconds period_start = 0;
};

// One host's share of a user's usage (Store::period_usage_by_host).
struct HostUsage {
  std::string host;  // "" = recorded before hosts were named (schema < 5)
  Usage usage;
  friend bool operator==(const HostUsage&, const HostUsage&) = default;
};

// A host that shares the store (the hosts table, schema 5): named by its
// [store] host_name when it first started, with its last committed sweep.
struct HostRecord {
  std::string name;  // "" = the rows recorded before hosts were named
  std::optional<UnixSeconds> first_seen;
  std::optional<UnixSeconds> last_sweep_at;
  std::uint64_t last_seq = 0;
  friend bool operator==(const HostRecord&, const HostRecord&) = default;
};

struct Event {
  std::int64_t id = 0;
  UnixSeconds at = 0;
  std::optional<UserId> user;
  std::string kind;    // "quota_warned", "quota_throttled", "period_reset", ...
  std::string detail;  // free text; never a secret
};

class Store {
 public:
  struct Options {
    // Migrate only up to this version (tests of the migration path).
    int schema_version = kSchemaVersion;
    // This host's name in the usage rows; empty = default_host_name().
    std::string host_name;
  };

  // Opens or creates the SQLite database at `path`, applies pending
  // migrations, and prepares the statements. Fails (kInternal) on a file
  // written by a newer mtwarden (user_version > kSchemaVersion).
  [[nodiscard]] static base::Result<Store> open(const std::string& path, Options options);
  [[nodiscard]] static base::Result<Store> open(const std::string& path) {
    return open(path, Options{});
  }
  // Opens the store [store] names: the SQLite file at `sqlite_path`, or the
  // PostgreSQL database (password read from password_file now; migrations
  // applied under an advisory lock, so hosts starting together migrate
  // once). Errors name the cause: kPermission for rejected credentials,
  // kNotFound for a missing database, kSyscall for an unreachable server or
  // an unreadable password file, kInternal for a schema newer than this
  // mtwarden. The password never appears in an error or a log line.
  [[nodiscard]] static base::Result<Store> open(const StoreConfig& config,
                                                const std::string& sqlite_path, Options options);
  [[nodiscard]] static base::Result<Store> open(const StoreConfig& config,
                                                const std::string& sqlite_path) {
    return open(config, sqlite_path, Options{});
  }
  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  ~Store();

  [[nodiscard]] base::Result<int> schema_version();
  // The name this store records usage under.
  const std::string& host_name() const noexcept;

  // Users. kExists on a duplicate name or secret, kNotFound on an unknown name/id.
  [[nodiscard]] base::Result<UserId> add_user(const StoredUser& user, UnixSeconds now);
  [[nodiscard]] base::Result<void> update_user(const StoredUser& user);  // by id
  // Deletes the user with its usage and history; events keep a NULL user.
  [[nodiscard]] base::Result<void> remove_user(std::string_view name);
  [[nodiscard]] base::Result<std::optional<StoredUser>> find_user(std::string_view name);
  [[nodiscard]] base::Result<std::vector<StoredUser>> list_users();

  // Adds every delta of one accounting sweep to this host's period and day
  // totals and records `now` as its last sweep, in ONE transaction: either
  // all deltas count or none does (an unknown user fails the whole sweep
  // with kNotFound). Deltas over 2^62 bytes are rejected (kBadInput) as
  // impossible, which also keeps the totals inside a signed 64-bit integer.
  // The store numbers the sweeps itself. A caller keeps the deltas of a
  // failed call and passes them again merged into the next ones (as the
  // daemon does); if the failed call's commit reached the database after
  // all (a connection lost during COMMIT), its deltas are taken out of the
  // next call, so nothing is counted twice or lost. Another process writing
  // under the same host name is reported (kExists) and the numbering moves
  // past its sweeps.
  [[nodiscard]] base::Result<void> apply_sweep(std::span<const UsageDelta> deltas, UnixSeconds now);
  // The same with the caller's sequence number: a sweep whose number is not
  // above this host's last committed one was applied before and changes
  // nothing (returns false); true when applied now.
  [[nodiscard]] base::Result<bool> apply_numbered_sweep(std::uint64_t seq,
                                                        std::span<const UsageDelta> deltas,
                                                        UnixSeconds now);
  // This host's last committed sweep number (0 before the first).
  [[nodiscard]] base::Result<std::uint64_t> last_sweep_seq();
  // The time of this host's last committed sweep; nullopt before the first.
  [[nodiscard]] base::Result<std::optional<UnixSeconds>> last_sweep_at();
  // Every host that ever used the store, ordered by name (the fleet).
  [[nodiscard]] base::Result<std::vector<HostRecord>> list_hosts();

  // Usage within the period starting at `period_start`, summed over every
  // host (zero if none).
  [[nodiscard]] base::Result<Usage> period_usage(UserId user, UnixSeconds period_start);
  // period_usage of many users at once, in the order of `keys`: on
  // PostgreSQL one query for all of them (the supervisor re-reads its
  // users' fleet totals every few seconds), on SQLite one lookup each.
  [[nodiscard]] base::Result<std::vector<Usage>> period_usages(std::span<const PeriodKey> keys);
  // The same per host that recorded any, ordered by host name.
  [[nodiscard]] base::Result<std::vector<HostUsage>> period_usage_by_host(UserId user,
                                                                          UnixSeconds period_start);
  // Per-day totals (all hosts) for days in [from, to) (unix seconds, whole
  // UTC days), oldest first.
  [[nodiscard]] base::Result<std::vector<DayUsage>> daily_history(UserId user, UnixSeconds from,
                                                                  UnixSeconds to);
  // Per-calendar-month sums of the daily totals in [from, to), oldest first.
  [[nodiscard]] base::Result<std::vector<MonthUsage>> monthly_history(UserId user, UnixSeconds from,
                                                                      UnixSeconds to);
  // Zeroes the user's usage in the period starting at `period_start` (the
  // quota starts afresh; the daily history is kept) and records an event.
  [[nodiscard]] base::Result<void> reset_period(UserId user, UnixSeconds period_start,
                                                UnixSeconds now, std::string_view actor);
  // Removes daily totals, ended periods and events older than
  // `history_days` before `now`. Returns the number of rows removed.
  [[nodiscard]] base::Result<std::uint64_t> prune(UnixSeconds now, std::uint32_t history_days);

  [[nodiscard]] base::Result<std::int64_t> record_event(UnixSeconds at, std::optional<UserId> user,
                                                        std::string_view kind,
                                                        std::string_view detail);
  // Newest first, at most `limit`; all users when `user` is nullopt.
  [[nodiscard]] base::Result<std::vector<Event>> events(std::optional<UserId> user,
                                                        std::size_t limit);

 private:
  // A sweep whose outcome is unknown: its deltas, in case they landed.
  struct Pending {
    std::uint64_t seq = 0;
    std::vector<UsageDelta> deltas;
  };
  Store(std::unique_ptr<StoreBackend> backend, std::uint64_t last_seq);
  std::unique_ptr<StoreBackend> backend_;
  std::uint64_t next_seq_ = 1;
  std::optional<Pending> pending_;
};

}  // namespace mtw::supervisor
