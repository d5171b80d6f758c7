// A user's presence: the client addresses with a connection open now and
// the last time the user had one open (last seen). Pure functions over
// values, like policy.h; the daemon feeds them its workers' reports
// (ipc::control::ClientsReport) and the handoffs not yet reported. Client
// addresses are personal data: the API shows them only where asked
// (GET /v1/users/{name}/ips) and nothing here logs.
// Thread-safe: pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "supervisor/policy.h"

namespace mtw::supervisor {

// A client address as the control protocol carries it: family 4 (IPv4 in
// the first 4 bytes) or 6.
struct ClientAddr {
  std::uint8_t family = 0;
  std::array<std::byte, 16> addr{};
};

// Open connections from one address.
struct ClientCount {
  ClientAddr client;
  std::uint32_t connections = 0;
};

struct OpenIp {
  std::string address;  // as tracked: the whole client address, as text
  std::string key;      // what max_unique_ips counts it as (unique_ip_key)
  std::uint32_t connections = 0;
};

// The distinct addresses with a connection open: `reported` (the worker's
// last report), plus `unreported` (one connection each: handed over since
// that report, or held by the supervisor). Entries with an unknown family
// are left out. Sorted by key, then address; each address once, its
// connections summed.
[[nodiscard]] std::vector<OpenIp> open_ips(std::span<const ClientCount> reported,
                                           std::span<const ClientAddr> unreported,
                                           unsigned ipv6_prefix);

// Last seen (Unix seconds, 0 = not seen) after a worker's report received
// at `report_unix` that says `open` connections are open and its latest
// connection ended at `last_close_unix` (0 = none ended): with connections
// open the user was there at the report; else when the last one ended.
// Never goes back: a handoff seen later than the reported close stays.
[[nodiscard]] UnixSeconds seen_after_report(UnixSeconds last_seen, UnixSeconds report_unix,
                                            std::uint64_t open, UnixSeconds last_close_unix);

}  // namespace mtw::supervisor
