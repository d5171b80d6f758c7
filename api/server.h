// The management HTTP API (Boost.Beast, C++20 coroutines) on the
// supervisor's io_context: JSON under /v1 (docs/api.md, docs/openapi.yaml),
// Prometheus text on /metrics. Listens on a Unix socket (mode 0660, group
// configurable; no token: file permissions are the access control) and
// optionally on TCP, where every request needs "Authorization: Bearer
// <token>" (compared with the stored SHA-256 in constant time). A TCP
// listener on a non-loopback address is refused unless allow_public is set.
// Bad requests get a 4xx with {"error":{"code":...,"message":...,"field":...}}
// and change nothing; bodies over the limit and clients slower than the
// request deadline are cut off; the server never stops for a bad client.
// Each listener has its own connection cap, TCP also one per peer address,
// and root always finds room on the Unix socket (ConnectionLimits), so a
// flood of TCP connections cannot lock out the socket. Refused connections
// and failed TCP authentications are logged in bounded volume (the first
// of a flood, then one summary per 10 s) and counted on /metrics.
// Not thread-safe: one io_context thread.
#pragma once

#include <memory>

#include <boost/asio/io_context.hpp>

#include "api/service.h"
#include "supervisor/config.h"

namespace mtw::api {

// Connection caps and the first-request deadline; the defaults are what the
// supervisor uses (docs/api.md), tests shrink them.
struct ConnectionLimits {
  std::size_t unix_max = 64;           // Unix socket connections of non-root peers
  std::size_t unix_root_reserve = 16;  // more that only root (uid 0) peers may open
  std::size_t tcp_max = 256;           // TCP connections in all
  std::size_t tcp_per_peer = 16;       // TCP connections from one address
  // A new connection that has not sent a byte by then is closed
  // (request_timeout_ms when that is shorter).
  std::uint32_t first_request_timeout_ms = 2'000;
};

class ApiServer {
 public:
  // Binds (removing a stale socket file first) and starts accepting.
  // `socket_path`: cfg.socket resolved by the caller. `token_path`: file
  // with the bearer token's SHA-256 (token.h); read at start, rewritten by
  // POST /v1/token/rotate. `fresh_token_hash`: a token made for this start
  // and not stored yet (first start): used instead of reading the file,
  // which the caller writes once its whole start has succeeded. Errors name
  // the socket/address (kSyscall, kPermission, kBadInput).
  [[nodiscard]] static Result<std::unique_ptr<ApiServer>> start(
      boost::asio::io_context& io, const supervisor::ApiConfig& cfg, const std::string& socket_path,
      const std::string& token_path, Service& service, const ConnectionLimits& limits = {},
      const std::string& fresh_token_hash = "");
  virtual ~ApiServer() = default;
  // Stops accepting, closes the listeners (and removes the socket file);
  // requests in flight finish.
  virtual void stop() = 0;
  // The bound TCP port (0 without TCP), for tests that bind port 0.
  virtual std::uint16_t tcp_port() const = 0;
};

}  // namespace mtw::api
