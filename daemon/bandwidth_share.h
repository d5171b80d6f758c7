// The host bandwidth budget ([bandwidth] up / down) applied: after each
// sweep has measured every user's rates, the running users' demands are
// split max-min fair per direction (supervisor::split_budget), weighted by
// each user's limits.bandwidth_weight (a heavy user of weight 3 gets three
// times the share of a heavy user of weight 1), and each
// user's share is left in UserRt::share_up_bps / share_down_bps, which
// UserPolicy gives the cell's shaper (the lower of the share and the user's
// own rate wins). A user held at its shaper's rate counts as wanting more,
// so a heavy user's share grows back as soon as others leave room; one that
// moved nothing keeps the water level, so it can start at once. A user's
// demand is the larger of its last two sweeps' rates, so one noisy count
// does not move the shares. A new division is in force within two sweeps
// of a change in demand.
// Thread: the event loop only. Lifetime: borrows `cfg`, `users` and
// `cells`, which outlive it.
#pragma once

#include <cstdint>

#include "daemon/user_policy.h"
#include "daemon/user_registry.h"
#include "supervisor/config.h"

namespace mtw::daemon {

class BandwidthShare {
 public:
  BandwidthShare(const supervisor::Config& cfg, UserRegistry& users, const CellOps& cells)
      : cfg_(cfg), users_(users), cells_(cells) {}

  // After the sweep's bill (UserRt::rate_bps_* hold the rates measured over
  // it): the new share of each user with a cell; 0 for everyone when a
  // direction has no budget, and for users without a cell.
  void divide();

  // The weight-1 share the heavy users were held at by the last division
  // (0: none was held back), for the status.
  std::uint64_t level_up_bps() const noexcept { return level_up_; }
  std::uint64_t level_down_bps() const noexcept { return level_down_; }

 private:
  const supervisor::Config& cfg_;
  UserRegistry& users_;
  const CellOps& cells_;  // who has a shaper, and its rates now
  std::uint64_t level_up_ = 0;
  std::uint64_t level_down_ = 0;
};

}  // namespace mtw::daemon
