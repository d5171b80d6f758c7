// Managed mode (docs/webfront.md): the supervisor starts the front with
// --control-fd, an AF_UNIX SOCK_SEQPACKET socket speaking the control
// protocol (docs/worker-control.md) in the gate's role. gate-table sets the
// users, report-request is answered with a report, and every stream goes to
// the supervisor as a gate-handoff carrying one end of a fresh AF_UNIX
// stream socketpair: the supervisor forwards it to the user's worker like
// any identified client, so the worker runs the stream's obfuscated2
// handshake and the cell's accounting, quotas, caps and shaping apply. The
// front keeps the other end as the stream's backend socket.
// Not thread-safe: the front's io_context thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "base/error.h"
#include "ipc/counters.h"
#include "proto/webproxy_access.h"
#include "webfront/backend.h"

namespace mtw::webfront {

struct FrontCounters;

class Control {
 public:
  struct Hooks {
    std::function<void(const std::vector<proto::WebUserSecret>&)> users;  // a gate-table applied
    std::function<ipc::Counters()> report;                                // for report-request
    std::function<void()> closed;  // the supervisor closed the socket: stop
  };
  // Takes `fd` (checked: SOCK_SEQPACKET; kBadInput otherwise). `listener_id`
  // goes into every handoff.
  [[nodiscard]] static base::Result<std::unique_ptr<Control>> adopt(boost::asio::io_context& io,
                                                                    int fd,
                                                                    std::uint32_t listener_id);
  ~Control();
  void start(Hooks hooks);
  // Stops reading the control socket (the process is stopping).
  void stop();
  // The backend that hands streams to the supervisor; valid while this lives.
  std::unique_ptr<StreamBackend> backend();
  std::uint64_t handoffs() const noexcept;
  std::uint64_t handoff_failures() const noexcept;

  struct Impl;

 private:
  explicit Control(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The front's counters in the report's schema (docs/worker-control.md):
// accepted = HTTPS connections, active = carrier sessions open, closed =
// sessions ended, handoffs = streams handed over, bytes_client_to_dc /
// bytes_dc_to_client = stream bytes up / down, masked = decoy responses,
// dc_connect_failures = streams whose hand-over failed, overload_closed.
ipc::Counters report_counters(const FrontCounters& c, const Control& control);

}  // namespace mtw::webfront
