// The report schema: a child's counters (worker or gate), totals since
// start, as a fixed array of u64 indexed by Counter. The order is part of
// the control protocol's report message (docs/worker-control.md): append
// new counters at the end only. Not thread-safe (each child is single-threaded).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proto/identify.h"

namespace mtw::ipc {

enum class Counter : std::size_t {
  kAccepted,        // client connections taken (accepted or handed over)
  kActive,          // currently open client connections (a gauge)
  kClosed,          // client connections finished
  kHandshakeOk,     // handshakes that reached the DC stage
  kFailNotMtproxy,  // handshake failures by reason ...
  kFailBadHmac,
  kFailClockSkew,
  kFailReplay,
  kFailWrongSni,
  kFailUnknownTag,
  kFailNotAllowed,
  kFailTimeout,          // handshake deadline passed
  kFailClosedEarly,      // client closed before the handshake completed
  kFailBadTlsInit,       // fake TLS: the obfuscated2 init in the records was bad
  kBytesClientToDc,      // payload bytes relayed client->DC (after decryption)
  kBytesDcToClient,      // payload bytes relayed DC->client
  kMasked,               // connections forwarded to the mask host (or discarded)
  kMaskedBytesToMask,    // bytes client->mask, incl. the handshake bytes replayed
  kMaskedBytesFromMask,  // bytes mask->client
  kDcConnectFailures,    // DC unreachable or timed out
  kHandoffs,             // worker: sockets received over the control fd; gate: sent to it
  kMaskRequests,         // gate: sockets the supervisor sent back to be masked
  kOverloadClosed,       // gate: closed at accept, --max-handshakes were in progress
  kRateLimited,          // gate: closed at accept, the client IP was over --per-ip-rate
  kDirectHandoffs,       // worker: sockets received over lanes; gate: sent over lanes
  kSeccompDenied,        // system calls refused by the seccomp filter (syscall_filter.h)
  kSourceLimited,    // gate: closed at accept, the source (or its subnet) held its handshake cap
  kEvictedUnproven,  // gate: handshake table full, the oldest unproven handshake closed for a new
                     // one
  kCount
};

inline constexpr std::size_t kCounterCount = static_cast<std::size_t>(Counter::kCount);

// snake_case name used in JSON and logs, e.g. "bytes_client_to_dc".
std::string_view counter_name(Counter c) noexcept;
// The failure counter for a proto rejection (kFailNotMtproxy for unknown ones).
Counter failure_counter(proto::Rejection r) noexcept;

struct Counters {
  std::array<std::uint64_t, kCounterCount> values{};

  std::uint64_t& operator[](Counter c) noexcept { return values[static_cast<std::size_t>(c)]; }
  std::uint64_t operator[](Counter c) const noexcept { return values[static_cast<std::size_t>(c)]; }
  std::uint64_t handshake_failures() const noexcept;
};

// {"accepted":1,...} on one line.
std::string counters_json(const Counters& c);
// "accepted=1 active=0 ..." with only the main counters.
std::string counters_summary(const Counters& c);

}  // namespace mtw::ipc
