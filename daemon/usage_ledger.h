// The cells' byte counters on their way into the store and the users'
// usage. Each sweep's readings are billed against the users' baselines
// (supervisor/accounting.h, bill): the baselines move at once, since the
// bytes are captured in the deltas, and the deltas wait here until a store
// transaction takes them, merged with those of earlier sweeps whose commit
// failed (disk full, database locked). A failed commit loses nothing: the
// next sweep commits it. Only committed bytes count in a user's period
// usage and totals, so the quota never runs ahead of the store.
// Thread: the event loop only. Lifetime: borrows `users`, which outlives it;
// the readings of one sweep hold users between read() and bill() only.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <vector>

#include "base/error.h"
#include "daemon/user_registry.h"
#include "supervisor/accounting.h"
#include "supervisor/store.h"

namespace mtw::daemon {

class UsageLedger {
 public:
  // The store's transaction (Store::apply_sweep): every delta or none.
  using Commit = std::function<base::Result<void>(std::span<const supervisor::UsageDelta>,
                                                  supervisor::UnixSeconds)>;

  UsageLedger(UserRegistry& users, Commit commit) : users_(users), commit_(std::move(commit)) {}

  // One cell's counters in the sweep under way.
  void read(UserRt& u, supervisor::CellBytes now);
  // Bills the readings since the last bill(): moves their baselines, sets
  // each read user's measured rate over `interval_s`, and adds the deltas
  // to those pending. Returns how many deltas this sweep made.
  std::size_t bill(double interval_s);
  // Commits every pending delta at `now` (those of deleted users are
  // dropped first). On success each goes to its user's totals, and to its
  // period usage when it is of the user's current period (bytes of a
  // period that ended while a commit failed are stored to that period,
  // not counted in this one). On failure they stay pending.
  [[nodiscard]] base::Result<void> commit(supervisor::UnixSeconds now);
  // Deltas waiting for a commit (one per user and period).
  std::size_t pending() const noexcept { return unstored_.size(); }

 private:
  UserRegistry& users_;
  Commit commit_;
  std::vector<supervisor::CellReading> readings_;
  std::vector<UserRt*> read_users_;  // parallel to readings_
  std::vector<supervisor::UsageDelta> unstored_;
};

}  // namespace mtw::daemon
