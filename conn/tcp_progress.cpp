#include "conn/tcp_progress.h"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>

namespace mtw::conn {

base::Result<std::uint64_t> tcp_bytes_acked(int fd) {
  tcp_info ti{};
  socklen_t len = sizeof ti;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
    return base::fail_errno("getsockopt TCP_INFO");
  // A kernel older than 4.1 returns a shorter struct without the field.
  if (len < offsetof(tcp_info, tcpi_bytes_acked) + sizeof ti.tcpi_bytes_acked)
    return base::fail(base::Errc::kSyscall, "getsockopt TCP_INFO: no tcpi_bytes_acked");
  return static_cast<std::uint64_t>(ti.tcpi_bytes_acked);
}

}  // namespace mtw::conn
