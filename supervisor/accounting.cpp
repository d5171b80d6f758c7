#include "supervisor/accounting.h"

namespace mtw::supervisor {

CellBytes moved_since(CellBytes baseline, CellBytes now) noexcept {
  return CellBytes{now.up >= baseline.up ? now.up - baseline.up : now.up,
                   now.down >= baseline.down ? now.down - baseline.down : now.down};
}

SweepBill bill(std::span<const CellReading> readings) {
  SweepBill b;
  b.next_baselines.reserve(readings.size());
  for (const CellReading& r : readings) {
    const CellBytes m = moved_since(r.billed, r.now);
    if (m.up != 0 || m.down != 0) b.deltas.push_back(UsageDelta{r.user, m.up, m.down, r.period});
    b.next_baselines.emplace_back(r.user, r.now);
  }
  return b;
}

}  // namespace mtw::supervisor
