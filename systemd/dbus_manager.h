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
  // bus fd on `io`. Only an unknown `bus` is an error (kBadInput). When the
  // bus cannot be reached, the name is taken or the policy refuses it, the
  // manager is returned unconnected (`dbus unavailable, retrying`): a
  // supervisor started before dbus-daemon gets its D-Bus face once the bus
  // is up. If the bus goes away later (`dbus connection lost, reconnecting`)
  // it is the same. Attempts are 1 s after and then at doubling intervals up
  // to 30 s; failures are logged at warn until the interval reaches 30 s,
  // then at debug, so a host without a bus is not flooded. Once the bus is
  // back: `dbus reconnected`. Nothing else is affected. `service` and `io`
  // must outlive the manager.
  static base::Result<std::unique_ptr<DbusManager>> start(boost::asio::io_context& io,
                                                          api::Service& service,
                                                          const DbusOptions& options);
  virtual ~DbusManager() = default;

  // Serving on the bus now (false while the bus is unreachable).
  virtual bool connected() const = 0;

  // Emits the signal matching an event (UserThrottled, UserUnthrottled,
  // QuotaWarning, WorkerRestarted, UserExpired, UsageReset, UpstreamHealth); other kinds are
  // ignored.
  virtual void on_event(const api::LiveEvent& e) = 0;
  // Releases the name and stops serving (before the service goes away).
  virtual void stop() = 0;
};

}  // namespace mtw::systemd
