// Where a WEB stream's bytes go: each OPEN becomes one ordinary MTProxy
// client connection, so a backend hands out one connected stream socket per
// stream. TcpBackend connects to a fixed numeric address (a local MTProxy,
// as the reference relay does, or a test DC). Thread-safety: the front's
// io_context thread only.
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include "base/error.h"
#include "base/unique_fd.h"
#include "proto/dc_table.h"
#include "proto/webproxy_access.h"

namespace mtw::webfront {

// The browser's address, as the front saw it (for the backend's logs and
// per-address accounting).
struct ClientAddress {
  std::uint8_t family = 0;  // 0 unknown, 4 IPv4 (first 4 bytes), 6 IPv6
  std::array<std::byte, 16> addr{};
  std::uint16_t port = 0;
};

class StreamBackend {
 public:
  virtual ~StreamBackend() = default;
  // A connected stream socket (non-blocking, close-on-exec) for a new
  // stream of `user`. Errors: kTimeout, kSyscall, kExhausted.
  virtual boost::asio::awaitable<base::Result<base::UniqueFd>> open(proto::WebUserId user,
                                                                    const ClientAddress& peer) = 0;
};

// Connects to `target` (a literal IPv4/IPv6 address) within `timeout_ms`.
std::unique_ptr<StreamBackend> make_tcp_backend(boost::asio::io_context& io,
                                                const proto::Endpoint& target,
                                                std::uint32_t timeout_ms);

}  // namespace mtw::webfront
