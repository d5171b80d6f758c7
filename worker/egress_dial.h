// Dialing a DC through the worker's egress (worker/egress.h): a plain
// connect, or a connect to a SOCKS upstream followed by its handshake
// (proto/socks.h), and the periodic health checks. Private to worker/
// (includes Asio). Single-threaded, like the rest of the worker.
#pragma once

#include <string>
#include <vector>

#include "base/error.h"
#include "proto/dc_table.h"
#include "proto/egress.h"
#include "proto/socks.h"
#include "worker/names.h"
#include "worker/runtime.h"

namespace mtw::worker {

// Connects `sock` through `up` to the first of `dc` (a DC's addresses, the
// preferred family first) that `up` can carry (SOCKS4: IPv4 only). The
// target travels as an address, so nothing is resolved in the cell. The
// caller enforces the deadline by closing `sock`. Errors name the step:
// "connect 198.18.0.2:1080: Connection refused", "socks5 username/password
// rejected (status 1)". `bound` (optional): through SOCKS, the address the
// proxy reports for its end of the tunnel (proto::socks::Step::bound);
// untouched for a direct connect.
awaitable<base::Result<void>> dial_upstream(tcp::socket& sock, const proto::UpstreamSpec& up,
                                            const std::vector<proto::Endpoint>& dc,
                                            proto::socks::Target* bound = nullptr);

// Every policy.health_interval_ms: dials policy.health_dc through each up
// upstream, and each down one whose retry time came, and records the
// outcome in rt.egress (re-read each round; without upstreams or with
// checks off it sleeps until woken). `timer` must outlive the loop;
// cancelling it wakes the loop (a live egress change), and while
// rt.draining is set ends it.
awaitable<void> egress_health_loop(Runtime& rt, asio::steady_timer& timer);

// The egress section of the stats file: "[{"name":"dante","up":true,...}]".
std::string egress_json(const Egress& e);

}  // namespace mtw::worker
