// The fleet-wide period usage of this host's users (fleet_usage.h).
#include "daemon/fleet_usage.h"

#include "base/log.h"

namespace mtw::daemon {

std::size_t FleetUsage::refresh(supervisor::Store& store, UserRegistry& users,
                                ipc::Clock::time_point steady) {
  if (read_once_ && steady - last_read_ < kReadInterval) return 0;
  read_once_ = true;
  last_read_ = steady;
  keys_.clear();
  who_.clear();
  for (auto& [id, u] : users) {
    if (u->state == UserState::kDisabled) continue;
    keys_.push_back({id, u->period.start});
    who_.push_back(u.get());
  }
  if (keys_.empty()) return 0;
  auto totals = store.period_usages(keys_);
  if (!totals || totals->size() != keys_.size()) {
    const std::string why =
        totals ? std::string("store: period usages: wrong row count") : totals.error().to_string();
    // Once per failure streak: the sweep would repeat it every few seconds.
    if (last_error_.empty()) {
      static const auto log = base::logger("supervisor");
      log->warn("fleet usage not read, keeping this host's figures error={}", why);
    }
    last_error_ = why;
    return 0;
  }
  for (std::size_t i = 0; i < who_.size(); ++i) who_[i]->period_usage = (*totals)[i];
  if (!last_error_.empty()) {
    static const auto log = base::logger("supervisor");
    log->info("fleet usage read again users={}", who_.size());
  }
  last_error_.clear();
  return who_.size();
}

}  // namespace mtw::daemon
