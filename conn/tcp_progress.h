// How far the peer has taken what we sent on a TCP socket, from the
// kernel's TCP_INFO. Kept out of the asio-using files: <linux/tcp.h> (whose
// tcp_info has tcpi_bytes_acked; glibc's copy lacks it) conflicts with the
// <netinet/tcp.h> asio includes.
#pragma once

#include <cstdint>

#include "base/error.h"

namespace mtw::conn {

// Bytes of ours the peer's kernel has acknowledged since the connection
// opened (RFC 4898 ThruOctetsAcked; counts from 1 for the SYN on some
// kernels, so compare values, never expect an exact sum). Errors:
// kSyscall (not a TCP socket, closed).
[[nodiscard]] base::Result<std::uint64_t> tcp_bytes_acked(int fd);

}  // namespace mtw::conn
