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
// Not thread-safe: one io_context thread.
#pragma once

#include <memory>

#include <boost/asio/io_context.hpp>

#include "api/service.h"
#include "supervisor/config.h"

namespace mtw::api {

class ApiServer {
 public:
  // Binds (removing a stale socket file first) and starts accepting.
  // `socket_path`: cfg.socket resolved by the caller. `token_path`: file
  // with the bearer token's SHA-256 (token.h); read at start, rewritten by
  // POST /v1/token/rotate. Errors name the socket/address (kSyscall,
  // kPermission, kBadInput).
  [[nodiscard]] static Result<std::unique_ptr<ApiServer>> start(boost::asio::io_context& io,
                                                                const supervisor::ApiConfig& cfg,
                                                                const std::string& socket_path,
                                                                const std::string& token_path,
                                                                Service& service);
  virtual ~ApiServer() = default;
  // Stops accepting, closes the listeners (and removes the socket file);
  // requests in flight finish.
  virtual void stop() = 0;
  // The bound TCP port (0 without TCP), for tests that bind port 0.
  virtual std::uint16_t tcp_port() const = 0;
};

}  // namespace mtw::api
