// Measures a mask site's TLS 1.3 server behaviour: real handshakes with
// OpenSSL, offering what a browser offers (TLS 1.3 + 1.2 suites, groups
// x25519 then P-256, ALPN h2 + http/1.1, the fake-TLS domain as SNI), while
// every byte the server sends is kept as it came off the wire (OpenSSL reads
// it from a memory BIO that this code fills from the socket), so that
// proto::parse_server_flight reads the server's own first flight. Then one
// HTTP/1.1 GET to see the record sizes of a typical response.
//
// BLOCKING: poll() on the caller's thread, up to handshakes x 3 x
// step_timeout_ms in the worst case. Run it off any event loop (a short-lived
// thread); the functions are thread-safe and share no state. Every step
// (resolve, connect, handshake, request, response) has its own deadline; a
// name is resolved with getaddrinfo, whose own timeouts (resolv.conf) apply.
// Never sends anything but one ClientHello, the client's handshake and one
// GET per probe; certificates are not checked (the mask's identity is not
// the question).
#pragma once

#include <cstdint>
#include <string>

#include "base/error.h"
#include "proto/tls_profile.h"

namespace mtw::supervisor {

struct MaskProbeOptions {
  std::string host;  // a name or an IP literal
  std::uint16_t port = 443;
  std::string sni;      // the fake-TLS domain
  int handshakes = 10;  // samples for the spread (1..kMaxProfileSamples)
  int step_timeout_ms = 5000;
  bool fetch_response = true;  // the GET after the last handshake
  std::string path = "/";
  // How the mask closes a silent connection: wait up to this long (0: not
  // measured; servers commonly allow 60 s, so a real wait is long).
  int idle_wait_ms = 0;
  // How it closes after kBadClientHello: wait up to this long (0: not measured).
  int bad_wait_ms = 5000;
};

// A handshake record holding 5 bytes that are no ClientHello: what a prober
// sends to see the mask's answer to garbage (OpenSSL: an alert, then FIN).
inline constexpr unsigned char kBadClientHello[] = {0x16, 0x03, 0x01, 0x00, 0x05,
                                                    'h',  'e',  'l',  'l',  'o'};

// Connects, writes `payload` (may be empty), then reads until the mask
// closes or `wait_ms` passes: the close kind, when, and what it sent.
// Errors: resolve/connect failures as in probe_handshake.
[[nodiscard]] base::Result<proto::CloseBehaviour> observe_close(const MaskProbeOptions& opts,
                                                                proto::ByteSpan payload,
                                                                int wait_ms);

// One handshake: the server's first flight, parsed, and its latency
// (connect start to handshake done). Errors name the step:
// "mask probe connect 127.0.0.1:443: ..." (kSyscall with errno),
// "mask probe handshake: ..." (kTimeout, kCrypto with OpenSSL's reason,
// kBadInput from the flight parser).
[[nodiscard]] base::Result<proto::FlightSample> probe_handshake(const MaskProbeOptions& opts);

// `handshakes` handshakes merged by proto::profile_from_flights, plus the
// response records when fetch_response and the idle / bad closes when their
// waits are set; measured_at = `now_unix`. Any failed
// step fails the whole probe (a partial profile would misdescribe the mask);
// the caller keeps the previous profile or falls back to the built-in one.
[[nodiscard]] base::Result<proto::TlsProfile> probe_mask(const MaskProbeOptions& opts,
                                                         std::int64_t now_unix);

}  // namespace mtw::supervisor
