// The persistent state of the supervisor in one SQLite file: users added at
// run time (and rows for users declared in the TOML file, so that usage has
// an owner), usage per user per quota period, per-user per-day totals kept
// for the configured history (>= 400 days), and an audit trail of events.
// WAL journal with synchronous=NORMAL: a process crash (kill -9) loses
// nothing committed, so at most the sweep in progress; a power loss may lose
// the last few commits (the WAL is synced at checkpoints, not per commit).
// Every write is one transaction: on error nothing of it remains.
// The file is created 0600 because it holds the users' secrets.
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

inline constexpr int kSchemaVersion = 4;

using UserId = std::int64_t;

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
  };

  // Opens or creates the database at `path`, applies pending migrations,
  // and prepares the statements. Fails (kInternal) on a file written by a
  // newer mtwarden (user_version > kSchemaVersion).
  [[nodiscard]] static base::Result<Store> open(const std::string& path, Options options);
  [[nodiscard]] static base::Result<Store> open(const std::string& path) {
    return open(path, Options{});
  }
  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  ~Store();

  [[nodiscard]] base::Result<int> schema_version();

  // Users. kExists on a duplicate name or secret, kNotFound on an unknown name/id.
  [[nodiscard]] base::Result<UserId> add_user(const StoredUser& user, UnixSeconds now);
  [[nodiscard]] base::Result<void> update_user(const StoredUser& user);  // by id
  // Deletes the user with its usage and history; events keep a NULL user.
  [[nodiscard]] base::Result<void> remove_user(std::string_view name);
  [[nodiscard]] base::Result<std::optional<StoredUser>> find_user(std::string_view name);
  [[nodiscard]] base::Result<std::vector<StoredUser>> list_users();

  // Adds every delta of one accounting sweep to the period and day totals
  // and records `now` as the last sweep, in ONE transaction: either all
  // deltas count or none does (an unknown user fails the whole sweep with
  // kNotFound). Deltas over 2^62 bytes are rejected (kBadInput) as
  // impossible, which also keeps the totals inside SQLite's int64.
  [[nodiscard]] base::Result<void> apply_sweep(std::span<const UsageDelta> deltas, UnixSeconds now);
  // The time of the last committed sweep; nullopt before the first.
  [[nodiscard]] base::Result<std::optional<UnixSeconds>> last_sweep_at();

  // Usage within the period starting at `period_start` (zero if none).
  [[nodiscard]] base::Result<Usage> period_usage(UserId user, UnixSeconds period_start);
  // Per-day totals for days in [from, to) (unix seconds, whole UTC days), oldest first.
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
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mtw::supervisor
