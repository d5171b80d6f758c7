// The HTTPS front of the WEB proxy (docs/webfront.md): accepts on inherited
// listening sockets, terminates TLS with the operator's certificate
// (CertStore, re-checked every cert_check_ms), and answers each request as
// site.h routes it: the bridge page for a known capability, the WebSocket
// carrier for a valid bootstrap token (one proto::WebSession per carrier,
// each OPEN a stream socket from the StreamBackend), and the decoy site for
// everything else. Faults end one session or stream with a counted reason;
// caps on connections, sessions and streams bound memory.
// Not thread-safe: one io_context thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "proto/webproxy_frame.h"
#include "webfront/backend.h"
#include "webfront/cert_store.h"
#include "webfront/options.h"
#include "webfront/site.h"

namespace mtw::webfront {

struct FrontCounters {
  std::uint64_t connections = 0;      // accepted TCP connections
  std::uint64_t overload_closed = 0;  // closed at accept: max_connections reached
  std::uint64_t tls_failures = 0;     // TLS handshake failed or timed out
  std::uint64_t requests = 0;
  std::uint64_t bridge_pages = 0;
  std::uint64_t decoy_responses = 0;
  std::uint64_t carrier_refused = 0;  // well-formed carrier request, token not accepted
  std::uint64_t session_limited = 0;  // refused at a session cap (process or user)
  std::uint64_t sessions_started = 0;
  std::uint64_t sessions_active = 0;   // gauge
  std::uint64_t streams_opened = 0;    // backend connected
  std::uint64_t backend_failures = 0;  // backend did not connect
  std::uint64_t bytes_up = 0;          // stream bytes written to backends
  std::uint64_t bytes_down = 0;        // stream bytes read from backends
  std::uint64_t cert_reloads = 0;
  std::uint64_t cert_failures = 0;
  std::array<std::uint64_t, proto::kWebReasonCount> session_closes{};  // by WebReason
  std::array<std::uint64_t, proto::kWebReasonCount> stream_closes{};   // by WebReason
};

class Front {
 public:
  Front(boost::asio::io_context& io, FrontOptions opts, CertStore certs, DecoySite decoy,
        const std::vector<proto::WebUserSecret>& users, std::unique_ptr<StreamBackend> backend);
  ~Front();
  Front(const Front&) = delete;
  Front& operator=(const Front&) = delete;

  // Adopts the listening sockets and starts accepting and the certificate
  // checks. kBadInput for an fd that is not a listening TCP socket.
  [[nodiscard]] base::Result<void> start();
  // Stops accepting; sessions end as their clients go.
  void stop();
  // Replaces the users (capabilities are recomputed); sessions keep going.
  void set_users(const std::vector<proto::WebUserSecret>& users);
  const FrontCounters& counters() const noexcept;
  // One line of every counter, for the log.
  std::string counters_line() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace mtw::webfront
