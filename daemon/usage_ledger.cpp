// The cells' byte counters on their way into the store (usage_ledger.h).
#include "daemon/usage_ledger.h"

#include <vector>

namespace mtw::daemon {

void UsageLedger::read(UserRt& u, supervisor::CellBytes now) {
  readings_.push_back(supervisor::CellReading{u.user.id, u.period, u.billed_bytes, now});
  read_users_.push_back(&u);
}

std::size_t UsageLedger::bill(double interval_s) {
  const supervisor::SweepBill b = supervisor::bill(readings_);
  // The bytes are captured in the deltas: the baselines move now, and the
  // deltas wait in unstored_ until a transaction takes them.
  for (std::size_t i = 0; i < read_users_.size(); ++i)
    read_users_[i]->billed_bytes = b.next_baselines[i].second;
  readings_.clear();
  read_users_.clear();
  for (const supervisor::UsageDelta& d : b.deltas) {
    UserRt& u = *users_.find(d.user);
    u.rate_bps_up = static_cast<std::uint64_t>(d.bytes_up * 8 / interval_s);
    u.rate_bps_down = static_cast<std::uint64_t>(d.bytes_down * 8 / interval_s);
  }
  supervisor::merge_deltas(unstored_, b.deltas);
  return b.deltas.size();
}

base::Result<void> UsageLedger::commit(supervisor::UnixSeconds now) {
  // A user deleted meanwhile has no rows to add to (and would fail them all).
  std::erase_if(unstored_,
                [&](const supervisor::UsageDelta& d) { return !users_.contains(d.user); });
  if (auto s = commit_(unstored_, now); !s) return s;
  for (const supervisor::UsageDelta& d : unstored_) {
    UserRt& u = *users_.find(d.user);
    if (d.period.start == u.period.start) {
      u.period_usage.bytes_up += d.bytes_up;
      u.period_usage.bytes_down += d.bytes_down;
    }
    u.bytes_up_total += d.bytes_up;
    u.bytes_down_total += d.bytes_down;
  }
  unstored_.clear();
  return {};
}

}  // namespace mtw::daemon
