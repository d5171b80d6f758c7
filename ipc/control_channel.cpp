#include "ipc/control_channel.h"

#include <cerrno>

#include "ipc/control_socket.h"

namespace mtw::ipc {

ControlChannel::ControlChannel(asio::posix::stream_descriptor& socket, OnMessage on_message,
                               OnError on_error)
    : socket_(socket), on_message_(std::move(on_message)), on_error_(std::move(on_error)) {}

awaitable<ControlChannel::End> ControlChannel::run() {
  for (;;) {
    if (!socket_.is_open()) co_return End::kClosed;
    auto [ec] = co_await socket_.async_wait(asio::posix::descriptor_base::wait_read, use_nothrow);
    if (ec || !socket_.is_open()) co_return End::kClosed;
    for (;;) {
      auto got = control::recv_datagram(socket_.native_handle(), /*dont_wait=*/true);
      if (!got) {
        const auto& e = got.error();
        if (e.code == base::Errc::kSyscall && (e.sys_errno == EAGAIN || e.sys_errno == EWOULDBLOCK))
          break;  // drained: wait again
        if (on_error_(Stage::kReceive, e) == Next::kStop) co_return End::kStopped;
        // A truncated datagram is gone: the next one may be fine. A failing
        // socket: wait until it is readable again rather than spin.
        if (e.code == base::Errc::kTooLarge) continue;
        break;
      }
      if (!*got) co_return End::kEof;
      auto msg = control::decode((*got)->bytes, (*got)->fds.size());
      if (!msg) {
        if (on_error_(Stage::kDecode, msg.error()) == Next::kStop) co_return End::kStopped;
        continue;
      }
      if (on_message_(std::move(*msg), std::move((*got)->fds)) == Next::kStop)
        co_return End::kStopped;
      if (!socket_.is_open()) co_return End::kClosed;  // a handler closed it
    }
  }
}

}  // namespace mtw::ipc
