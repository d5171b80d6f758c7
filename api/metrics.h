// Prometheus text exposition (format 0.0.4) of the service's state: per-user
// series (bytes each way, connections open/total, held/refused, throttled,
// quota used ratio, unique IPs, worker restarts, up), gate health and
// handshake failures by reason, cells, masked connections. Names follow
// Prometheus conventions (mtwarden_ prefix, _bytes_total, _total, base
// units); label values are escaped. Also the API server's own counters
// (connections refused at accept, failed TCP authentications).
// Pure: builds text from values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "api/service.h"

namespace mtw::api {

// Counted by the API server (server.cpp) since it started.
struct ApiCounters {
  std::uint64_t refused_unix = 0;          // Unix socket listener full
  std::uint64_t refused_tcp_listener = 0;  // TCP listener full
  std::uint64_t refused_tcp_peer = 0;      // the TCP peer's own cap reached
  std::uint64_t auth_failures_tcp = 0;     // TCP requests without a valid bearer token
};

std::string metrics_text(const ServerStatus& server, const std::vector<UserStatus>& users,
                         const ApiCounters& api = {});

}  // namespace mtw::api
