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

// The message of a migration error when the database is newer than the code.
std::string newer_schema_message(int found);

// The users.upstreams column (both engines): NULL (nullopt) = inherit,
// '' = direct, else the names joined by ',' (upstream names hold no comma).
std::string format_upstream_column(const std::vector<std::string>& names);
std::vector<std::string> parse_upstream_column(std::string_view text);

// The rows a user's history is kept for, both engines.
inline constexpr std::int64_t kSecondsPerDay = 86'400;

}  // namespace mtw::supervisor
