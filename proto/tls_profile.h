// The mask profile: what a real TLS 1.3 server (the mask site behind a
// fake-TLS domain) sends in answer to a browser-like ClientHello, and the
// authenticated fake-TLS answer built to look like it.
//
// - parse_server_flight: a pure parser over the raw bytes a server sent up to
//   the end of its first flight (ServerHello, CCS, encrypted records).
// - profile_from_flights: many such observations -> one TlsProfile (the
//   spread of every encrypted record length).
// - format_profile / parse_profile: the profile's text form, for storage and
//   transfer between processes. One definition here, both directions.
// - builtin_profile: the fallback when the mask cannot be measured (a
//   common nginx + OpenSSL 3 site with an RSA-2048 certificate chain).
// - build_server_hello(…, TlsProfile, …): the answer itself.
//
// Pure: no sockets, no clock (callers pass times). All functions are
// thread-safe; values are plain data. See docs/proto.md "Mask profile".
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/bytes.h"
#include "proto/fake_tls.h"
#include "proto/random.h"

namespace mtw::proto {

inline constexpr std::uint16_t kExtKeyShare = 0x0033;
inline constexpr std::uint16_t kExtSupportedVersions = 0x002b;
inline constexpr std::uint16_t kGroupX25519 = 0x001d;
// One fake-TLS AppData record carries the whole encrypted flight (clients
// read exactly one): its payload may not exceed the TLS 1.3 ciphertext limit.
inline constexpr std::size_t kMaxProfileRecord = 16384 + 256;
// Caps that bound a profile (and the text parser): more is not a TLS server.
inline constexpr std::size_t kMaxProfileExtensions = 16;
inline constexpr std::size_t kMaxProfileRecords = 32;
inline constexpr std::size_t kMaxProfileSamples = 64;
// ServerHello extension bytes (headers, bodies, the key share): keeps the
// built ServerHello one small record. Real ones are about 50 bytes.
inline constexpr std::size_t kMaxProfileExtensionBytes = 4096;

// One ServerHello extension as the server sent it. The key_share body is
// regenerated per answer (a fresh key); every other body is sent verbatim.
struct TlsExtension {
  std::uint16_t type = 0;
  // In a ServerFlight: the body as sent. In a TlsProfile, key_share keeps
  // only its 4-byte head (group, key length); the key is made per answer.
  Bytes body;
  friend bool operator==(const TlsExtension&, const TlsExtension&) = default;
};

// What one server sent in one handshake, read off the wire.
struct ServerFlight {
  std::uint16_t record_version = 0;  // of the ServerHello record (03 03)
  std::uint16_t legacy_version = 0;  // ServerHello.legacy_version (03 03)
  std::uint16_t cipher_suite = 0;
  Bytes session_id;                      // as echoed
  std::vector<TlsExtension> extensions;  // wire order
  std::uint16_t key_share_group = 0;
  std::size_t key_share_len = 0;
  std::size_t ccs_count = 0;
  std::vector<std::size_t> encrypted_records;  // payload lengths of the 17 03 03 records, in order
  std::size_t consumed = 0;                    // bytes of the input parsed (whole records)
};

// Parses `in`: the bytes a server sent, from its first byte up to (at least)
// the end of its first flight; a partial trailing record is ignored.
// `client_session_id` is what the client offered (to tell an echo).
// Errors: kShortInput (the ServerHello record is not complete), kBadInput
// (not a TLS 1.3 ServerHello: other record type or version, an alert,
// HelloRetryRequest, no supported_versions 03 04, malformed extensions,
// a record over 16640 bytes).
[[nodiscard]] Result<ServerFlight> parse_server_flight(ByteSpan in);

// Whole milliseconds; a sample list is kept sorted.
struct LatencySummary {
  std::uint32_t min_ms = 0;
  std::uint32_t median_ms = 0;
  std::uint32_t max_ms = 0;
  friend bool operator==(const LatencySummary&, const LatencySummary&) = default;
};

struct RecordRange {
  std::size_t min = 0;
  std::size_t max = 0;
  friend bool operator==(const RecordRange&, const RecordRange&) = default;
};

enum class ProfileSource { kMeasured, kBuiltin };

// How the mask ends a connection it does not like. kOpen: still open when
// the prober stopped waiting (after_ms is then the wait); kUnknown: not
// measured.
enum class CloseKind { kUnknown, kFin, kRst, kOpen };
inline constexpr std::size_t kMaxReplyHead = 16;
struct CloseBehaviour {
  CloseKind kind = CloseKind::kUnknown;
  std::uint32_t after_ms = 0;  // from the probe's last write to the close
  std::size_t reply_len = 0;   // bytes the mask sent before closing
  Bytes reply_head;            // the first of them, at most kMaxReplyHead
  friend bool operator==(const CloseBehaviour&, const CloseBehaviour&) = default;
};

struct TlsProfile {
  ProfileSource source = ProfileSource::kBuiltin;
  std::int64_t measured_at = 0;  // unix seconds; 0 for the built-in profile
  std::string domain;            // the SNI it was measured with (empty: any)
  std::size_t samples = 0;       // handshakes behind the ranges
  std::uint16_t legacy_version = 0x0303;
  std::uint16_t cipher_suite = 0x1301;  // chosen for a browser-like offer
  bool session_id_echo = true;
  std::vector<TlsExtension> extensions;  // wire order; must hold one key_share
  // Derived from the key_share extension's head (kept equal by the parser
  // and by profile_from_flights).
  std::uint16_t key_share_group = kGroupX25519;
  std::size_t key_share_len = 32;
  std::size_t ccs_count = 1;
  std::vector<RecordRange> encrypted_records;  // per record of the first flight
  LatencySummary handshake_latency;
  std::vector<std::size_t> response_records;  // 17 03 03 payload lengths after the handshake
  CloseBehaviour idle_close;                  // a connection that sends nothing
  CloseBehaviour bad_close;  // a malformed ClientHello record (see supervisor/mask_probe.h)
  // ClientHello written -> first byte of the mask's answer, as the prober
  // saw it (the mask's think time plus one round trip from this host):
  // microseconds, sorted, at most kMaxProfileSamples; empty = not measured.
  std::vector<std::uint32_t> answer_us;
  friend bool operator==(const TlsProfile&, const TlsProfile&) = default;
};

// Wire bytes of the whole encrypted first flight (headers included): the
// range one fake-TLS AppData record (5 + N bytes) is drawn from.
[[nodiscard]] RecordRange flight_wire_range(const TlsProfile& p) noexcept;

struct FlightSample {
  ServerFlight flight;
  Bytes client_session_id;  // what the client offered (echo detection)
  std::uint32_t latency_ms = 0;
  std::uint32_t answer_us = 0;  // hello written -> first answer byte; 0 = not measured
};
// Merges observations of one server. The ServerHello fields must agree
// across samples (else kBadInput: the server is not deterministic there,
// and no single answer would match it); samples with a record count other
// than the most common one are dropped. Errors: kBadInput (no samples,
// disagreeing fields, more than kMaxProfileSamples).
[[nodiscard]] Result<TlsProfile> profile_from_flights(std::span<const FlightSample> samples,
                                                      std::string_view domain,
                                                      std::int64_t measured_at);

// The time to hold an authenticated answer back (microseconds, measured
// from when the hello was complete), so that answers come as late as the
// mask's own: a draw from the mask's answer_us distribution (its inverse
// CDF, linear between neighbouring samples), 0 when not measured.
[[nodiscard]] std::uint32_t draw_answer_delay_us(const TlsProfile& p, RandomSource& rnd);

// The payload of a full TLS 1.3 record with an AEAD suite (2^14 plaintext,
// its content type byte, a 16-byte tag): what nginx/OpenSSL and most
// servers send while they have data.
inline constexpr std::size_t kTls13FullRecordPayload = 16384 + 1 + 16;
// The largest record payload the relay sends toward a fake-TLS client: the
// largest the mask sent in its probed response when that was a full record
// (>= 2^14), else kTls13FullRecordPayload; at most kMaxProfileRecord.
[[nodiscard]] std::size_t relay_record_payload(const TlsProfile& p) noexcept;

// The text form: one "key value..." line per field, see docs/proto.md.
// parse_profile(format_profile(p)) == p for every valid p.
[[nodiscard]] std::string format_profile(const TlsProfile& p);
// Errors: kBadInput naming the line (unknown key, bad number, a field
// missing, a duplicate, out of range: more than the caps above, a key_share
// extension missing or malformed).
[[nodiscard]] Result<TlsProfile> parse_profile(std::string_view text);

// Several measured profiles in one text, each from its own
// "mtw-tls-profile 1" line, keyed by their `domain`: what the supervisor
// sends the gate and the workers (the mask-profiles control message).
inline constexpr std::size_t kMaxBundleProfiles = 4096;
[[nodiscard]] std::string format_profile_bundle(std::span<const TlsProfile> profiles);
// Errors: kBadInput naming the profile (1-based) and its line: a profile
// parse_profile rejects, one without a domain, a domain given twice (case
// ignored), text before the first header; kTooLarge over kMaxBundleProfiles.
// Empty text is an empty bundle.
[[nodiscard]] Result<std::vector<TlsProfile>> parse_profile_bundle(std::string_view text);

// nginx 1.22 + OpenSSL 3.0 with an RSA-2048 leaf and one intermediate (a
// typical Let's Encrypt chain), answering a browser offer with x25519.
[[nodiscard]] const TlsProfile& builtin_profile();

// ServerHello ‖ CCS ‖ one AppData record shaped by `profile`: legacy
// version, session id echo, cipher and extensions in the profile's order
// with its bodies (key_share: a fresh key of the profile's group; a real
// point for x25519, random bytes of the right length otherwise), one CCS
// (clients require it), and one AppData record whose wire size is drawn
// uniformly from flight_wire_range (clamped to kMaxProfileRecord), filled
// with fresh random bytes. srv_random is the HMAC exactly as in the
// options variant, so verify_server_hello accepts it.
[[nodiscard]] Bytes build_server_hello(const ClientHello& hello, const SecretKey& key,
                                       const TlsProfile& profile, RandomSource& rnd);

}  // namespace mtw::proto
