#include "supervisor/accounting.h"

#include <functional>
#include <unordered_map>
#include <utility>

namespace mtw::supervisor {

CellBytes moved_since(CellBytes baseline, CellBytes now) noexcept {
  return CellBytes{now.up >= baseline.up ? now.up - baseline.up : now.up,
                   now.down >= baseline.down ? now.down - baseline.down : now.down};
}

PeriodCheck check_period(const PeriodBounds& current, const Limits& limits, UnixSeconds now) {
  if (now < current.end && now >= current.start) return PeriodCheck{current, false, false};
  return PeriodCheck{period_bounds(limits.period, limits.anchor_day, now), true,
                     current.end != 0 && now >= current.end};
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

void merge_deltas(std::vector<UsageDelta>& pending, std::span<const UsageDelta> more) {
  if (pending.empty()) {  // every sweep whose commit worked: no index needed
    pending.assign(more.begin(), more.end());
    return;
  }
  struct KeyHash {
    std::size_t operator()(const std::pair<UserId, UnixSeconds>& k) const noexcept {
      return std::hash<UserId>{}(k.first) * 31 + std::hash<UnixSeconds>{}(k.second);
    }
  };
  std::unordered_map<std::pair<UserId, UnixSeconds>, std::size_t, KeyHash> at;
  at.reserve(pending.size() + more.size());
  for (std::size_t i = 0; i < pending.size(); ++i)
    at.emplace(std::pair{pending[i].user, pending[i].period.start}, i);
  for (const UsageDelta& d : more) {
    auto [it, fresh] = at.emplace(std::pair{d.user, d.period.start}, pending.size());
    if (fresh) {
      pending.push_back(d);
    } else {
      pending[it->second].bytes_up += d.bytes_up;
      pending[it->second].bytes_down += d.bytes_down;
    }
  }
}

}  // namespace mtw::supervisor
