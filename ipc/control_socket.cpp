#include "ipc/control_socket.h"

#include <sys/socket.h>

#include <cstring>

#include "ipc/control_protocol.h"

namespace mtw::ipc::control {

using base::Errc;
using base::fail;
using base::fail_errno;

base::Result<void> send_datagram(int sock, proto::ByteSpan bytes, int fd) {
  iovec iov{const_cast<std::byte*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof(cbuf);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  ssize_t n;
  do {
    n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return fail_errno("sendmsg control");
  if (static_cast<std::size_t>(n) != bytes.size()) return fail(Errc::kInternal, "short sendmsg");
  return {};
}

base::Result<std::optional<Datagram>> recv_datagram(int sock, bool dont_wait) {
  Datagram d;
  d.bytes.resize(kMaxMessageSize);
  iovec iov{d.bytes.data(), d.bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(4 * sizeof(int))] = {};
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof(cbuf);
  int flags = MSG_CMSG_CLOEXEC | (dont_wait ? MSG_DONTWAIT : 0);
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, flags);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return fail_errno("recvmsg control");
  // Take ownership of every fd first so that an early return closes them.
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      d.fds.emplace_back(fd);
    }
  }
  if (n == 0 && d.fds.empty()) return std::optional<Datagram>();
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
    return fail(Errc::kTooLarge, "control datagram truncated");
  }
  d.bytes.resize(static_cast<std::size_t>(n));
  return std::optional<Datagram>(std::move(d));
}

}  // namespace mtw::ipc::control
