// Quota and connection policy as pure functions of (limits, usage, now):
// period boundaries in UTC, quota state, the effective shaping rate, and the
// max-min fair split of a global connection budget. No clocks, no I/O, so
// the supervisor's decisions are reproducible in tests. Thread-safe.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "supervisor/limits.h"

namespace mtw::supervisor {

// Unix seconds, UTC.
using UnixSeconds = std::int64_t;
inline constexpr UnixSeconds kForever = std::numeric_limits<UnixSeconds>::max();

// [start, end). kLifetime is [0, kForever).
struct PeriodBounds {
  UnixSeconds start = 0;
  UnixSeconds end = kForever;
  friend bool operator==(const PeriodBounds&, const PeriodBounds&) = default;
};

// The period containing `now`. Daily periods start at 00:00 UTC; weekly ones
// at 00:00 UTC of ISO weekday `anchor_day` (1 = Monday); monthly ones at
// 00:00 UTC of day `anchor_day` of the month, clamped to the month's last
// day (anchor 31 means the 28th/29th in February, the 30th in April).
// Anchor values out of range are clamped to the nearest valid one.
PeriodBounds period_bounds(Period period, int anchor_day, UnixSeconds now);

enum class QuotaState {
  kNormal,
  kWarned,     // used >= warn_percent of the quota
  kThrottled,  // used >= quota: the throttle rate applies until the period ends
};
std::string_view quota_state_name(QuotaState s) noexcept;

struct QuotaStatus {
  QuotaState state = QuotaState::kNormal;
  std::uint64_t used_bytes = 0;
  std::uint64_t quota_bytes = 0;  // 0 = no quota (state is then always kNormal)
  std::uint64_t remaining_bytes = 0;
  PeriodBounds period;
  UnixSeconds resets_at = kForever;  // when the normal rate returns (period end)
};

// `used_bytes` is up + down within the period that contains `now`.
QuotaStatus quota_status(const Limits& limits, std::uint64_t used_bytes, UnixSeconds now);

// Why a user runs at the throttle rate; both can hold at once.
struct ThrottleReasons {
  bool quota = false;
  bool unique_ips = false;
  bool any() const noexcept { return quota || unique_ips; }
  friend bool operator==(const ThrottleReasons&, const ThrottleReasons&) = default;
};

struct EffectiveRate {
  std::uint64_t up_bps = 0;  // 0 = unshaped
  std::uint64_t down_bps = 0;
  ThrottleReasons reasons;
  std::string reason_text;  // "quota used up", "3 unique IPs > limit 2", "" when none
};

// The rate the shaper should apply now. Throttling never raises a rate: a
// user configured below the throttle rate keeps the lower one.
EffectiveRate effective_rate(const Limits& limits, QuotaState quota, std::uint32_t unique_ips);

// What counts as one client for max_unique_ips: an IPv4 address as text,
// an IPv6 address masked to its first `ipv6_prefix` bits as "PREFIX/LEN"
// (one host usually owns a whole /64: [connections] ipv6_source_prefix,
// the same length the gate's per-source limits use; 128 keeps the whole
// address, without "/128"). `family` 4 or 6 as in the control protocol's
// peer address (IPv4 in the first 4 bytes); anything else is "?".
[[nodiscard]] std::string unique_ip_key(int family, std::span<const std::byte, 16> addr,
                                        unsigned ipv6_prefix);

struct ConnectionDemand {
  std::uint32_t demand = 0;  // connections open plus held
  std::uint32_t cap = 0;     // per-user max_connections; 0 = none
};

// Max-min fair allowance of `budget` connections among users: each user
// wants min(demand, cap); if all wants fit, each gets its want; otherwise
// users wanting no more than the equal share keep all of it and the rest is
// split evenly among the heavier users (remainders go to the lowest indices,
// so the result is deterministic). Output index i belongs to input i.
// Guarantees: sum <= budget, out[i] <= want[i], and the budget is used up
// whenever the total want exceeds it.
std::vector<std::uint32_t> fair_share(std::uint64_t budget,
                                      std::span<const ConnectionDemand> users);

// Direct lanes (docs/supervisor.md): how many more connections the gate may
// hand a user's worker without asking, so that admission stays what
// can_admit would decide. nullopt = no limit applies (no cap, no budget).
struct LaneCreditInput {
  std::uint32_t active = 0;           // the user's open + in-flight connections
  std::uint32_t max_connections = 0;  // 0 = no cap
  std::uint64_t global_budget = 0;    // 0 = none
  std::uint64_t budget_used = 0;      // all users' active + unused credit, minus this user's credit
  std::uint64_t fair = 0;             // max(fair allowance, equal share) when there is a budget
  std::size_t lanes = 1;              // users with lanes, sharing what is left of the budget
  bool held = false;                  // connections of this user already wait: none direct
};
inline constexpr std::uint64_t kMaxLaneCredit = 64;
std::optional<std::uint64_t> lane_credit(const LaneCreditInput& in);

}  // namespace mtw::supervisor
