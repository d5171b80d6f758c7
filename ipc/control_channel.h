// ControlChannel: the receive side of one control socket (AF_UNIX
// SOCK_SEQPACKET, one message per datagram, docs/worker-control.md): waits
// until the socket is readable, receives every datagram that is ready
// (recv_datagram: the buffer, SCM_RIGHTS fds, truncation), decodes each
// (control::decode) and hands it to its owner, until EOF, the owner says
// stop, or the descriptor is closed. Every program's control loops are this
// one loop with different handlers: the worker's control socket and lanes,
// the gate's control socket (and the supervisor's readers of both).
// Lives on the descriptor's executor; not thread-safe. The descriptor must
// outlive run() and be in non-blocking mode.
#pragma once

#include <functional>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "ipc/asio.h"
#include "ipc/control_protocol.h"

namespace mtw::ipc {

class ControlChannel {
 public:
  enum class Next { kContinue, kStop };
  // Where a datagram failed: receiving it, or decoding what was received.
  enum class Stage { kReceive, kDecode };
  enum class End {
    kEof,      // the peer closed its end
    kStopped,  // a handler returned kStop
    kClosed,   // the descriptor was closed or its wait cancelled
  };
  // A decoded message and the fds that came with it (as many as its type carries).
  using OnMessage = std::function<Next(control::Message, std::vector<base::UniqueFd>)>;
  // A datagram that could not be received (kReceive; kTooLarge: truncated,
  // its fds closed; kSyscall: the socket failed) or decoded (kDecode;
  // kBadInput, kTooLarge). kContinue goes on with the next datagram (after
  // a failing socket, once it is readable again).
  using OnError = std::function<Next(Stage, const base::Error&)>;

  ControlChannel(asio::posix::stream_descriptor& socket, OnMessage on_message, OnError on_error);

  // Receives until EOF, a handler's kStop or the descriptor closing.
  awaitable<End> run();

 private:
  asio::posix::stream_descriptor& socket_;
  OnMessage on_message_;
  OnError on_error_;
};

}  // namespace mtw::ipc
