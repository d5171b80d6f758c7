// The D-Bus face of mtwarden: service org.mtwarden.Manager1, object
// /org/mtwarden/Manager1, interface org.mtwarden.Manager1 (docs/dbus.md and
// docs/org.mtwarden.Manager1.xml are the reference). A thin sdbus-c++
// binding over dbus_handlers.h, which maps calls onto api::Service, the same
// model the HTTP API uses. The bus connection is driven from the
// supervisor's io_context (its fd is watched by Asio), so every method runs
// on the supervisor's thread. Not thread-safe.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "api/service.h"
#include "base/error.h"

namespace mtw::systemd {

inline constexpr const char* kBusName = "org.mtwarden.Manager1";
inline constexpr const char* kObjectPath = "/org/mtwarden/Manager1";
inline constexpr const char* kInterface = "org.mtwarden.Manager1";

struct DbusOptions {
  // "system" (default; honours $DBUS_SYSTEM_BUS_ADDRESS) or "session".
  std::string bus = "system";
};

class DbusManager {
 public:
  // Connects, exports the object, claims kBusName and starts watching the
  // bus fd on `io`. Errors: kSyscall with the bus's error name and reason (no
  // bus, name taken, policy refused), kBadInput for an unknown `bus`.
  // `service` and `io` must outlive the manager. If the bus goes away later
  // (`dbus connection lost, reconnecting`), the manager connects again, 1 s
  // after and then at doubling intervals up to 30 s, and serves again once
  // the bus is back (`dbus reconnected`); nothing else is affected.
  static base::Result<std::unique_ptr<DbusManager>> start(boost::asio::io_context& io,
                                                          api::Service& service,
                                                          const DbusOptions& options);
  virtual ~DbusManager() = default;

  // Emits the signal matching an event (UserThrottled, UserUnthrottled,
  // QuotaWarning, WorkerRestarted, UserExpired); other kinds are ignored.
  virtual void on_event(const api::LiveEvent& e) = 0;
  // Releases the name and stops serving (before the service goes away).
  virtual void stop() = 0;
};

}  // namespace mtw::systemd
