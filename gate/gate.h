// Gate: the unprivileged front on the public listeners (docs/gate.md). It
// accepts on inherited listening sockets, identifies each client's user with
// the handshake reader both child programs share (conn/connection.h:
// proto::identify against the user table the supervisor sends), hands
// identified sockets with the bytes already read to the supervisor
// (GateHandoff) and masks everything else, plus what the supervisor sends
// back (GateMask). One io_context on the calling thread; Asio stays out of
// this header (pimpl). Not thread-safe.
#pragma once

#include <memory>

#include "base/error.h"
#include "gate/gate_options.h"

namespace mtw::gate {

class Gate {
 public:
  explicit Gate(GateOptions opts);
  ~Gate();
  Gate(const Gate&) = delete;

  // Checks and adopts the inherited fds: every --listen-fd must be a bound,
  // listening TCP socket and --control-fd an AF_UNIX SOCK_SEQPACKET socket.
  // Errors (kBadInput) say which fd is wrong and why.
  [[nodiscard]] base::Result<void> start();
  // Serves until SIGTERM/SIGINT or the control socket closing, then drops
  // every connection and returns the exit status (0).
  int run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mtw::gate
