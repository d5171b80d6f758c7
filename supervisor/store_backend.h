// Internal to the store: the engine behind Store. Store owns one backend and
// does what both engines share (input checks, sweep numbering, recovery of a
// sweep whose commit outcome is unknown); a backend owns its connection, its
// statements and its dialect of the schema. Both engines keep the same
// tables and the same schema versions (kSchemaVersion), so a version number
// means the same thing in either.
// Not thread-safe, like Store: one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "supervisor/store.h"

struct pg_conn;  // libpq's PGconn

namespace mtw::supervisor {

class StoreBackend {
 public:
  virtual ~StoreBackend() = default;

  virtual const std::string& host_name() const noexcept = 0;
  [[nodiscard]] virtual base::Result<int> schema_version() = 0;

  // Input is already checked by Store (non-empty secrets).
  [[nodiscard]] virtual base::Result<UserId> add_user(const StoredUser& user, UnixSeconds now) = 0;
  [[nodiscard]] virtual base::Result<void> update_user(const StoredUser& user) = 0;
  [[nodiscard]] virtual base::Result<void> remove_user(std::string_view name) = 0;
  [[nodiscard]] virtual base::Result<std::optional<StoredUser>> find_user(
      std::string_view name) = 0;
  [[nodiscard]] virtual base::Result<std::vector<StoredUser>> list_users() = 0;

  // In one transaction: if `seq` is not above this host's last sequence
  // number, nothing is written and the result is false; otherwise every
  // delta (sizes already checked) is added to this host's rows, the host's
  // sequence number becomes `seq` and its last sweep `now`.
  [[nodiscard]] virtual base::Result<bool> apply_sweep(std::uint64_t seq,
                                                       std::span<const UsageDelta> deltas,
                                                       UnixSeconds now) = 0;
  [[nodiscard]] virtual base::Result<std::uint64_t> last_sweep_seq() = 0;
  [[nodiscard]] virtual base::Result<std::optional<UnixSeconds>> last_sweep_at() = 0;
  [[nodiscard]] virtual base::Result<std::vector<HostRecord>> list_hosts() = 0;

  [[nodiscard]] virtual base::Result<std::vector<HostUsage>> period_usage_by_host(
      UserId user, UnixSeconds period_start) = 0;
  // Every key's usage summed over the hosts, in the order of `keys`. By
  // default one period_usage_by_host each (a local file); PostgreSQL
  // answers all in one round trip.
  [[nodiscard]] virtual base::Result<std::vector<Usage>> period_usages(
      std::span<const PeriodKey> keys);
  // Days since 1970-01-01 in [from_day, to_day), all hosts summed.
  [[nodiscard]] virtual base::Result<std::vector<DayUsage>> daily_history(UserId user,
                                                                          std::int64_t from_day,
                                                                          std::int64_t to_day) = 0;
  [[nodiscard]] virtual base::Result<std::vector<MonthUsage>> monthly_history(
      UserId user, std::int64_t from_day, std::int64_t to_day) = 0;
  [[nodiscard]] virtual base::Result<void> reset_period(UserId user, UnixSeconds period_start,
                                                        UnixSeconds now,
                                                        std::string_view actor) = 0;
  [[nodiscard]] virtual base::Result<std::uint64_t> prune(std::int64_t cutoff_day) = 0;
  [[nodiscard]] virtual base::Result<std::int64_t> record_event(UnixSeconds at,
                                                                std::optional<UserId> user,
                                                                std::string_view kind,
                                                                std::string_view detail) = 0;
  [[nodiscard]] virtual base::Result<std::vector<Event>> events(std::optional<UserId> user,
                                                                std::size_t limit) = 0;
};

// store_sqlite.cpp: the file at `path` (created 0600), migrated to `schema_version`.
[[nodiscard]] base::Result<std::unique_ptr<StoreBackend>> open_sqlite_backend(
    const std::string& path, int schema_version, std::string host_name);

// store_pg.cpp: the database `conninfo` names, logged in with `password`
// (empty = none, or what the conninfo's other sources give), migrated to
// `schema_version` under an advisory lock.
[[nodiscard]] base::Result<std::unique_ptr<StoreBackend>> open_pg_backend(
    const std::string& conninfo, const std::string& password, int schema_version,
    std::string host_name);

// libpq's connection keywords and values for `conninfo` with the defaults
// the store uses (timeouts, keepalives) and `password` (empty = none); both
// arrays end in nullptr, for PQconnectdbParams/PQconnectStartParams with
// expand_dbname = 1. Holds copies of the strings. Never printed.
class PgConnectParams {
 public:
  PgConnectParams(const std::string& conninfo, const std::string& password);
  PgConnectParams(const PgConnectParams&) = delete;
  PgConnectParams& operator=(const PgConnectParams&) = delete;
  const char* const* keys() const noexcept { return keys_.data(); }
  const char* const* values() const noexcept { return values_.data(); }

 private:
  std::string conninfo_, password_;
  std::vector<const char*> keys_, values_;
};

// What a failed PostgreSQL connection attempt says, as an error code
// (kPermission, kNotFound, kSyscall), for the store and its listener.
base::Error pg_connect_error(pg_conn* c);

// The first line of [store] password_file (kSyscall when unreadable,
// kBadInput when empty or over 4 KiB). The password is never in an error.
[[nodiscard]] base::Result<std::string> read_password_file(const std::string& path);

// The PostgreSQL channel the store NOTIFYs on when a user is added,
// changed or removed, in the same transaction; the payload is the user's
// name. Every host LISTENs on it (StoreListener, store_listen.h).
inline constexpr std::string_view kUsersChannel = "mtwarden_users";

// The message of a migration error when the database is newer than the code.
std::string newer_schema_message(int found);

// The users.upstreams column (both engines): NULL (nullopt) = inherit,
// '' = direct, else the names joined by ',' (upstream names hold no comma).
std::string format_upstream_column(const std::vector<std::string>& names);
std::vector<std::string> parse_upstream_column(std::string_view text);

// The rows a user's history is kept for, both engines.
inline constexpr std::int64_t kSecondsPerDay = 86'400;

}  // namespace mtw::supervisor
