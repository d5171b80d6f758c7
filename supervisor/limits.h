// Per-user limits: the resolved set every user ends up with, the sparse
// overrides a user declares on top of [defaults], and the one home of their
// rules: the bounds every way in checks against (the TOML reader, the HTTP
// API's JSON, which D-Bus goes through too, and the daemon), the patch
// application and the check of a whole set of overrides. Shared by the
// config loader, the store (overrides are persisted column by column, NULL
// = inherit) and the policy functions. Plain values, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "base/error.h"

namespace mtw::supervisor {

enum class Period { kDaily, kWeekly, kMonthly, kLifetime };

std::string_view period_name(Period p) noexcept;
// "daily" | "weekly" | "monthly" | "lifetime"; kBadInput otherwise.
[[nodiscard]] base::Result<Period> parse_period(std::string_view text);

// 0 means "no limit" for every rate, quota and count below.
struct Limits {
  std::uint64_t rate_up_bps = 0;    // client -> DC, shaped on the cell side of the veth
  std::uint64_t rate_down_bps = 0;  // DC -> client, shaped on the host side
  std::uint64_t quota_bytes = 0;    // up + down per period
  Period period = Period::kMonthly;
  // kMonthly: day of month 1..31, clamped to the month's length (31 = last day).
  // kWeekly: ISO weekday 1..7 (1 = Monday). Ignored for daily and lifetime.
  int anchor_day = 1;
  std::uint64_t throttle_bps = 1'000'000;  // both directions once the quota is used up
  int warn_percent = 80;                   // quota share that raises a warning event
  std::uint32_t max_connections = 0;
  std::uint32_t max_unique_ips = 0;
  bool on_demand = false;               // start the cell at the first connection
  std::uint32_t idle_teardown_s = 900;  // on-demand cells: tear down after this idle time
  // The user's weight in the split of a host [bandwidth] budget: heavy users
  // get shares in proportion to it (3 against 1 gets three times as much).
  std::uint32_t bandwidth_weight = 1;

  friend bool operator==(const Limits&, const Limits&) = default;
};

// What a user sets explicitly; unset fields inherit from [defaults], so a
// change of a default reaches every user that did not override it.
struct LimitOverrides {
  std::optional<std::uint64_t> rate_up_bps;
  std::optional<std::uint64_t> rate_down_bps;
  std::optional<std::uint64_t> quota_bytes;
  std::optional<Period> period;
  std::optional<int> anchor_day;
  std::optional<std::uint64_t> throttle_bps;
  std::optional<int> warn_percent;
  std::optional<std::uint32_t> max_connections;
  std::optional<std::uint32_t> max_unique_ips;
  std::optional<bool> on_demand;
  std::optional<std::uint32_t> idle_teardown_s;
  std::optional<std::uint32_t> bandwidth_weight;

  friend bool operator==(const LimitOverrides&, const LimitOverrides&) = default;
};

// Overrides win field by field.
Limits resolve_limits(const Limits& defaults, const LimitOverrides& user);

// Bounds of the limit values. Rates: 0 = unlimited (not for throttle_rate),
// else tc's useful minimum (~1 KB/s) up to netns' kMaxRateBps.
inline constexpr std::uint64_t kMinLimitRateBps = 8'000;
inline constexpr std::uint64_t kMaxLimitRateBps = 100'000'000'000;
struct IntRange {
  std::int64_t lo, hi;
};
inline constexpr IntRange kAnchorDayRange{1, 31};  // weekly periods: 1..7 (ISO weekday)
inline constexpr IntRange kWarnPercentRange{1, 99};
inline constexpr IntRange kMaxConnectionsRange{0, 1'000'000};
inline constexpr IntRange kMaxUniqueIpsRange{0, 1'000'000};
inline constexpr IntRange kIdleTeardownRange{10, 30 * 86'400};
// The range supervisor::split_budget accepts for a demand's weight.
inline constexpr IntRange kBandwidthWeightRange{1, 1'000};

// The limit part of a change to a user: a field unset leaves the override
// as it is, set to nullopt drops it (back to [defaults]), set to a value
// overrides.
struct LimitPatch {
  std::optional<std::optional<std::uint64_t>> rate_up_bps, rate_down_bps, quota_bytes, throttle_bps;
  std::optional<std::optional<Period>> period;
  std::optional<std::optional<int>> anchor_day, warn_percent;
  std::optional<std::optional<std::uint32_t>> max_connections, max_unique_ips, idle_teardown_s,
      bandwidth_weight;
  std::optional<std::optional<bool>> on_demand;
};
void apply_limit_patch(const LimitPatch& patch, LimitOverrides& overrides);

// kBadInput naming the first field ("limits.anchor_day: must be 1..31") whose
// value is out of its bounds above, or a weekly anchor_day above 7, or an
// unlimited throttle_rate.
[[nodiscard]] base::Result<void> check_limit_overrides(const LimitOverrides& o);

}  // namespace mtw::supervisor
