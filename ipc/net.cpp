// Socket helpers of the shared Asio vocabulary (asio.h).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "base/log.h"
#include "ipc/asio.h"

namespace mtw::ipc {

namespace {

void tune_fd(int fd) noexcept {
  int on = 1, idle = 60, interval = 10, count = 3;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

}  // namespace

void tune_socket(tcp::socket& s) noexcept { tune_fd(s.native_handle()); }

void tune_listener(tcp::acceptor& a) noexcept { tune_fd(a.native_handle()); }

awaitable<error_code> connect_addresses(tcp::socket& sock,
                                        const std::vector<tcp::endpoint>& targets) {
  error_code last = asio::error::host_not_found;
  for (const auto& t : targets) {
    error_code ignored;
    sock.close(ignored);
    // Non-blocking before the first async operation: one FIONBIO, not two.
    error_code oec;
    sock.open(t.protocol(), oec);
    if (!oec) sock.non_blocking(true, oec);
    if (oec) {
      last = oec;
      continue;
    }
    auto [cec] = co_await sock.async_connect(t, use_nothrow);
    if (!cec) co_return cec;
    last = cec;
  }
  co_return last;
}

void LogExceptions::operator()(std::exception_ptr e) const noexcept {
  if (!e) return;
  static const auto log = base::logger("worker");
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log->error("coroutine failed where={} error={}", what, ex.what());
  } catch (...) {
    log->error("coroutine failed where={} error=unknown", what);
  }
}

}  // namespace mtw::ipc
