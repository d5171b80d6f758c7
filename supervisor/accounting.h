// Billing one sweep: cumulative veth byte counters in, usage deltas and the
// baselines to bill from next time out. Pure functions over values, no
// clock, no store, no kernel: the daemon reads the counters, commits the
// deltas, and adopts the new baselines only after the commit succeeded, so
// a failed transaction (disk full, database locked) leaves the bytes to be
// billed by the next sweep instead of losing them. Thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

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
  // Every reading's `now`, in reading order: the baselines to adopt once
  // `deltas` are committed, and only then.
  std::vector<std::pair<UserId, CellBytes>> next_baselines;
};

[[nodiscard]] SweepBill bill(std::span<const CellReading> readings);

}  // namespace mtw::supervisor
