// Sending and receiving control datagrams (control_protocol.h) with an
// optional SCM_RIGHTS fd, over an AF_UNIX SOCK_SEQPACKET socket. Plain
// syscalls, no Asio: the worker calls recv_datagram after its descriptor
// became readable; tests and the parent use the blocking form.
// Thread-safe as far as the kernel socket is.
#pragma once

#include <optional>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "proto/bytes.h"

namespace mtw::ipc::control {

struct Datagram {
  proto::Bytes bytes;
  std::vector<base::UniqueFd> fds;  // received with MSG_CMSG_CLOEXEC
};

// Sends one datagram, attaching `fd` if >= 0 (the caller keeps its copy).
// Errors: kSyscall (EAGAIN included when non-blocking and full).
[[nodiscard]] base::Result<void> send_datagram(int sock, proto::ByteSpan bytes, int fd = -1);

// Receives one datagram (up to kMaxMessageSize bytes, up to 4 fds).
// `dont_wait`: MSG_DONTWAIT. Returns nullopt at EOF (peer closed).
// Errors: kSyscall (EAGAIN when nothing is ready), kTooLarge when the
// datagram or its control data was truncated (its fds are closed).
[[nodiscard]] base::Result<std::optional<Datagram>> recv_datagram(int sock, bool dont_wait);

}  // namespace mtw::ipc::control
