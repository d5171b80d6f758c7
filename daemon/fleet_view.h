// The hosts that share this supervisor's store, as GET /v1/fleet and
// /metrics show them. Read by the accounting sweep at most every
// kReadInterval, never per request: a status request must not wait on a
// database that may be across the network, and a panel polling /metrics
// must not turn into a query per scrape. A failed read keeps the last list
// and says why (last_error), so a database outage shows as stale sweep
// times and an error, not as an empty fleet.
// Thread: the event loop only.
#pragma once

#include <chrono>
#include <string>

#include "api/service.h"
#include "ipc/asio.h"
#include "supervisor/store.h"

namespace mtw::daemon {

class FleetView {
 public:
  static constexpr std::chrono::seconds kReadInterval{10};

  FleetView(supervisor::StoreEngine engine, std::string this_host);

  // Reads the hosts from `store` unless the last read is younger than
  // kReadInterval (`steady`); `now` is recorded as the read's time.
  void refresh(supervisor::Store& store, supervisor::UnixSeconds now,
               ipc::Clock::time_point steady);
  const api::ServerStatus::Fleet& view() const noexcept { return view_; }

 private:
  api::ServerStatus::Fleet view_;
  ipc::Clock::time_point last_read_{};
  bool read_once_ = false;
};

}  // namespace mtw::daemon
