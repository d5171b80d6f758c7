#include "daemon/fleet_view.h"

#include "base/log.h"

namespace mtw::daemon {

FleetView::FleetView(supervisor::StoreEngine engine, std::string this_host) {
  view_.backend = engine == supervisor::StoreEngine::kPostgresql ? "postgresql" : "sqlite";
  view_.this_host = std::move(this_host);
}

void FleetView::refresh(supervisor::Store& store, supervisor::UnixSeconds now,
                        ipc::Clock::time_point steady) {
  if (read_once_ && steady - last_read_ < kReadInterval) return;
  read_once_ = true;
  last_read_ = steady;
  auto hosts = store.list_hosts();
  if (!hosts) {
    // Logged once per failure streak: the sweep would repeat it every 10 s.
    if (view_.last_error.empty()) {
      static const auto log = base::logger("supervisor");
      log->warn("fleet hosts not read, keeping the last list error={}", hosts.error().to_string());
    }
    view_.last_error = hosts.error().to_string();
    return;
  }
  view_.hosts = std::move(*hosts);
  view_.read_at = now;
  view_.last_error.clear();
}

}  // namespace mtw::daemon
