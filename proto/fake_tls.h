// Fake TLS ('ee' secrets): ClientHello parsing and validation, the server's
// answer, and the record layer of the data phase. See
// ../shared/docs/protocol.md §5. Pure; no clock: callers pass `now`.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "proto/bytes.h"
#include "proto/random.h"
#include "proto/secret.h"
#include "proto/tls_crypto.h"

namespace mtw::proto {

inline constexpr std::size_t kTlsHeaderSize = 5;
inline constexpr std::size_t kMinClientHelloRecord = 512;       // PY, ERL: >= 512 bytes
inline constexpr std::size_t kMaxClientHelloBytes = 16 * 1024;  // all fragments together
inline constexpr std::size_t kMaxClientHelloFragments = 10;     // as mtg
inline constexpr std::size_t kMaxTlsRecordPayload = 16640;      // RFC 8446 limit, reader side
inline constexpr std::size_t kMaxTlsWritePayload = 16384 - kTlsHeaderSize;  // writer side

// How much of a ClientHello is in `in` so far. kNeedMore carries the total
// byte count needed when it is known (after the record headers), else 0.
struct HelloScan {
  bool complete = false;
  std::size_t needed = 0;  // bytes needed in total (complete: bytes the hello occupies)
};
// Errors: kBadInput when the bytes cannot be a TLS ClientHello at all
// (not 16 03 01, wrong handshake type, too many fragments, too large, a
// handshake under 512 bytes, a record that runs past the handshake). Looks
// only at the bytes present, so a non-TLS stream is rejected after 1 byte.
[[nodiscard]] Result<HelloScan> scan_client_hello(ByteSpan in);

struct ClientHello {
  std::array<std::byte, 32> random{};
  std::array<std::byte, 32> session_id{};
  std::size_t session_id_len = 0;  // 0..32
  std::optional<std::string> sni;  // host_name from extension 0x0000
  std::uint16_t cipher_suite = 0;  // first non-GREASE suite offered
  // The hello as one TLS record (fragments reassembled) with bytes [11,43)
  // zeroed: what the HMAC covers.
  Bytes hmac_input;
  std::size_t consumed = 0;  // bytes of `in` the hello occupied
};

// Parses a complete ClientHello (one record or several 16 03 01 fragments).
// The handshake (all fragments' payloads together) must be >= 512 bytes and
// end exactly at a record boundary; bytes after it in `in` are ignored.
// Errors: kShortInput (incomplete), kBadInput (malformed, handshake < 512 bytes).
[[nodiscard]] Result<ClientHello> parse_client_hello(ByteSpan in);

struct ClockWindow {
  std::int64_t now = 0;                 // unix seconds
  std::int64_t max_skew_seconds = 600;  // |now - ts| allowed
  // Clients that only know time since boot send small values; accept any
  // ts below this (0 disables). PY uses 86,400,000.
  std::int64_t accept_below = 0;
};

// HMAC-SHA256(K, hmac_input) xor random: first 28 bytes must be zero
// (kBadHandshake), last 4 are the client's unix time, checked against `clock`
// (kClockSkew). Returns the timestamp.
[[nodiscard]] Result<std::uint32_t> validate_client_hello(const ClientHello& hello,
                                                          const SecretKey& key,
                                                          const ClockWindow& clock);
// The HMAC part alone: the client's timestamp if `key` produced the hello,
// else nullopt. No allocation; what identify() runs per candidate secret.
[[nodiscard]] std::optional<std::uint32_t> client_hello_timestamp(const ClientHello& hello,
                                                                  const SecretKey& key);
// The same with the key's HMAC pads precomputed (UserIndex keeps one per
// secret): the per-candidate cost is the hello's SHA-256 blocks plus one.
[[nodiscard]] std::optional<std::uint32_t> client_hello_timestamp(const ClientHello& hello,
                                                                  const HmacSha256Key& key);
// True if `ts` lies in the window (see ClockWindow).
[[nodiscard]] bool timestamp_in_window(std::uint32_t ts, const ClockWindow& clock) noexcept;
// kWrongSni when the hello carries no SNI or a different one (ASCII case-insensitive).
[[nodiscard]] Result<void> check_sni(const ClientHello& hello, std::string_view domain);

struct ServerHelloOptions {
  // Random ApplicationData length range, bytes, inclusive. Clamped to
  // [1, 16384]; min > max is treated as min == max.
  std::size_t app_data_min = 2500;
  std::size_t app_data_max = 4700;
};
// ServerHello (echoing session id and suite, x25519 key share) ‖ CCS ‖
// ApplicationData; 127 + 6 + 5 + N bytes for a 32-byte session id. srv_random = HMAC-SHA256(K,
// client_random ‖ all of it with srv_random zeroed) written at offset 11.
[[nodiscard]] Bytes build_server_hello(const ClientHello& hello, const SecretKey& key,
                                       const ServerHelloOptions& opts, RandomSource& rnd);
// Client side check of a server answer (tests, our probes): kShortInput when
// the three records are not all there yet, kBadHandshake when the prefixes or
// the HMAC do not match. Returns bytes consumed (the three records).
[[nodiscard]] Result<std::size_t> verify_server_hello(ByteSpan in,
                                                      std::span<const std::byte, 32> client_random,
                                                      const SecretKey& key);
// Client side (tests, benchmarks): a ClientHello for `secret` (fake TLS) at
// unix time `now`, with SNI = secret.domain, GREASE values and a real x25519
// key share, padded to 517 bytes like browsers and TDLib. Returns the record.
// A secret with an empty domain gives a hello without the SNI extension.
[[nodiscard]] Bytes build_client_hello(const Secret& secret, std::int64_t now, RandomSource& rnd);

// Data phase, reading: whole records from `in`; CCS (14 03 03 00 01 01) is
// skipped, application data (17 03 03) payload goes to the sink. Returns bytes
// consumed; a partial record is left. Empty application records are skipped.
// Errors: kBadInput (other type, version not 03 03), kTooLarge (payload >
// kMaxTlsRecordPayload); a bad header is reported as soon as its bytes are
// present. On error the records before the bad one were already delivered.
using RecordSink = std::function<void(ByteSpan payload)>;
[[nodiscard]] Result<std::size_t> read_tls_records(ByteSpan in, const RecordSink& sink);

// Data phase, writing: wraps `payload` into 17 03 03 records of at most
// max_payload bytes each (1..kMaxTlsRecordPayload, else MTW_CHECK aborts) and
// appends them to `out`. An empty payload appends nothing.
void write_tls_records(ByteSpan payload, Bytes& out, std::size_t max_payload = kMaxTlsWritePayload);
// In-place variant for the relay: writes one header for `n` payload bytes
// (n <= kMaxTlsRecordPayload, else MTW_CHECK aborts).
void write_tls_header(std::span<std::byte, kTlsHeaderSize> out, std::size_t n) noexcept;

}  // namespace mtw::proto
