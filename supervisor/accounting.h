// Billing one sweep: cumulative veth byte counters in, usage deltas and the
// baselines to bill from next time out. Pure functions over values, no
// clock, no store, no kernel. The daemon reads the counters, moves the
// baselines, and adds the deltas to what waits to be committed
// (merge_deltas); that is committed in one transaction and kept when the
// transaction fails (disk full, database locked), so the bytes are billed
// by a later sweep, to the period they were moved in, even when the cell
// is torn down meanwhile. Thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "supervisor/limits.h"
#include "supervisor/policy.h"
#include "supervisor/store.h"

namespace mtw::supervisor {

// A cell's cumulative bytes as read from its veth's host end (upload =
// bytes the cell sent, download = bytes it received).
struct CellBytes {
  std::uint64_t up = 0;
  std::uint64_t down = 0;
  friend bool operator==(const CellBytes&, const CellBytes&) = default;
};

// Bytes moved between `baseline` and `now`. A counter below its baseline
// belongs to a new link (a recreated cell): it counts whole, per direction.
[[nodiscard]] CellBytes moved_since(CellBytes baseline, CellBytes now) noexcept;

// One user's cell in a sweep: the counters now, the baseline of the last
// committed bill, and the usage period the bytes belong to.
struct CellReading {
  UserId user = 0;
  PeriodBounds period;
  CellBytes billed;  // baseline: what the store already holds
  CellBytes now;
};

struct SweepBill {
  // One delta per reading whose cell moved bytes since its baseline, in
  // reading order; readings without movement have none.
  std::vector<UsageDelta> deltas;
  // Every reading's `now`, in reading order: the baselines to bill from
  // next time (the deltas carry what moved until now).
  std::vector<std::pair<UserId, CellBytes>> next_baselines;
};

[[nodiscard]] SweepBill bill(std::span<const CellReading> readings);

// The usage period a user is billed to at `now`, decided in one place for
// the sweep, a limits change and a reset. `current` stays while now is
// inside it; otherwise the period containing now is taken, and it is a
// roll-over (the usage counts from zero again, as after a reset) only when
// `current` ran out, not when it was never computed (end 0) or the clock
// was set back before its start.
struct PeriodCheck {
  PeriodBounds period;
  bool changed = false;      // period differs from current: reload its stored usage
  bool rolled_over = false;  // the old period ended: a "usage_reset" event
};
[[nodiscard]] PeriodCheck check_period(const PeriodBounds& current, const Limits& limits,
                                       UnixSeconds now);

// Adds `more` into `pending`, one entry per (user, period start): however
// many sweeps fail to commit, what waits stays bounded by users x periods.
void merge_deltas(std::vector<UsageDelta>& pending, std::span<const UsageDelta> more);

}  // namespace mtw::supervisor
