// The blocking probes behind `mtwarden doctor`'s checks: TCP connects with
// a deadline, one exchange of probe bytes (what came back and how the other
// side ended), this host's addresses, an SNTP reading and a SOCKS CONNECT
// through an upstream. Every call has its own deadline; nothing here keeps
// state. Thread-safe; blocks the calling thread (doctor runs on its own).
#pragma once

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "doctor/answers.h"
#include "proto/bytes.h"
#include "proto/dc_table.h"
#include "proto/egress.h"

namespace mtw::doctor {

// Resolves (a name or a literal) and connects to the first address that
// answers within `timeout_ms` in all. The socket is blocking on return.
// Errors: kNotFound (resolve), kTimeout, kSyscall (connect, with errno).
[[nodiscard]] base::Result<base::UniqueFd> connect_tcp(const proto::Endpoint& ep, int timeout_ms);

struct ExchangeOptions {
  int connect_timeout_ms = 5000;
  int quiet_ms = 1500;  // stop listening this long after the last byte (or after sending)
  int total_ms = 6000;  // and at the latest this long after sending
};
// Connects, sends `payload`, and reads until the other side closes (fin),
// resets (rst) or stays quiet (open). At most 256 KiB are kept.
Answer exchange(const proto::Endpoint& ep, proto::ByteSpan payload, const ExchangeOptions& o);

// Every address on this host's interfaces (loopback included), as text.
std::set<std::string> local_addresses();

// One SNTP (RFC 4330) query: the offset reference - `now_unix_s` (the
// caller's clock, which may carry doctor's test offset) and the round trip.
struct NtpReading {
  double offset_s = 0;
  double round_trip_s = 0;
};
[[nodiscard]] base::Result<NtpReading> sntp_query(const proto::Endpoint& server, int timeout_ms,
                                                  double (*now_unix_s)());

// Connects to the upstream and asks it (SOCKS4/5, with the spec's
// credentials) to CONNECT to `target`; success when the proxy says the
// tunnel is open. Errors: the connect's, or the SOCKS refusal by name.
[[nodiscard]] base::Result<void> socks_connect(const proto::UpstreamSpec& upstream,
                                               const proto::Endpoint& target, int timeout_ms);

}  // namespace mtw::doctor
