// The host bandwidth budget ([bandwidth] up / down): one direction's
// budget split max-min fair among the users moving traffic, with optional
// weights. Users who need less than an equal (weighted) share keep what
// they need; what is left is split among the heavy ones. Pure: the
// supervisor feeds it each sweep's measured rates and the rates it set
// last time, and applies the answer to the cells' shapers (the lower of
// the fair rate and the user's own limit or quota throttle wins).
// Thread-safe: plain values.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace mtw::supervisor {

struct BandwidthDemand {
  std::uint64_t measured_bps = 0;  // what the user moved in the last sweep
  // The rate the user's shaper had during that sweep (0 = none). A user
  // measured at >= kSaturated of it was held back and may want more: its
  // demand counts as unbounded.
  std::uint64_t shaped_bps = 0;
  // What the user may have at most whatever the budget (its own rate limit
  // or quota throttle; 0 = none): it never gets a larger share than this.
  std::uint64_t cap_bps = 0;
  std::uint32_t weight = 1;  // 1..1000
};

// Measured at or above this share of the shaper's rate = held back.
inline constexpr double kSaturated = 0.9;

struct BandwidthSplit {
  // One per demand, in order: the rate to shape that user to. A light user
  // gets the water level too (not its measured rate), so it can grow at
  // once; the next sweep re-divides when it does.
  std::vector<std::uint64_t> rate_bps;
  // The weight-1 share the heavy users are held at (0: nobody is held,
  // the budget covers every demand).
  std::uint64_t level_bps = 0;
};

// The rate a user's shaper gets: the lower of its own (limits, quota or
// unique-IP throttle) and its share of the host budget, where 0 means none
// for either.
inline std::uint64_t within_share(std::uint64_t own_bps, std::uint64_t share_bps) noexcept {
  if (share_bps == 0) return own_bps;
  return own_bps == 0 ? share_bps : (own_bps < share_bps ? own_bps : share_bps);
}

// `budget_bps` 0 = no budget: every rate is the user's cap (0 = unshaped).
// Users that moved nothing take no share and get the level, like light ones.
BandwidthSplit split_budget(std::uint64_t budget_bps, std::span<const BandwidthDemand> users);

}  // namespace mtw::supervisor
