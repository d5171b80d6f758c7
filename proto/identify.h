// User identification for the gate: given the first bytes of a connection and
// the enabled users' secrets, which user is it (or none, and why)? Fake-TLS
// hellos are matched by SNI domain first, so 1000 users do not mean 1000
// HMACs per connection; obfuscated2 inits are tried against each secret
// (one SHA-256 block + one AES block each, peek_client_init()). Pure; the
// replay cache is caller state.
// Thread-safety: a UserIndex is immutable after construction (it holds each
// secret's precomputed HMAC pad states as plain data) and may be shared
// read-only by any number of threads calling identify() at once; the only
// mutable state identify() touches is the caller's ReplayCache and a
// per-thread OpenSSL cipher context inside peek_client_init().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "proto/bytes.h"
#include "proto/fake_tls.h"
#include "proto/obfs2.h"
#include "proto/replay.h"
#include "proto/secret.h"
#include "proto/tls_crypto.h"

namespace mtw::proto {

using UserId = std::uint32_t;

struct UserSecret {
  UserId user = 0;
  Secret secret;
};

// Which handshakes are allowed (per listener or per worker).
struct AllowedProtocols {
  bool abridged = true;      // tag ef (simple secret)
  bool intermediate = true;  // tag ee (simple secret)
  bool padded = true;        // tag dd (simple or dd secret)
  bool fake_tls = true;      // ee secret
  friend bool operator==(const AllowedProtocols&, const AllowedProtocols&) = default;
};
// "all", or a comma list of: abridged, intermediate, secure (=padded), tls.
[[nodiscard]] Result<AllowedProtocols> parse_allowed_protocols(std::string_view text);

// Immutable index over a set of secrets; rebuild on change.
class UserIndex {
 public:
  explicit UserIndex(std::vector<UserSecret> secrets);
  const std::vector<UserSecret>& secrets() const noexcept { return secrets_; }
  // Indices into secrets() whose fake-TLS domain equals `domain` (lower-cased).
  const std::vector<std::size_t>* by_domain(std::string_view domain) const;
  std::size_t fake_tls_count() const noexcept { return fake_tls_count_; }
  // secrets()[i]'s key with its HMAC pads absorbed, for client_hello_timestamp().
  const HmacSha256Key& hmac_key(std::size_t i) const { return hmac_keys_[i]; }

 private:
  std::vector<UserSecret> secrets_;
  std::vector<HmacSha256Key> hmac_keys_;  // parallel to secrets_
  std::unordered_map<std::string, std::vector<std::size_t>> domains_;
  std::size_t fake_tls_count_ = 0;
};

enum class Rejection {
  kNone,
  kNeedMore,    // not enough bytes yet to decide
  kNotMtproxy,  // neither a TLS ClientHello nor any secret's obfuscated2 init (incl. HTTP)
  kBadHmac,     // a TLS hello no secret's HMAC matches
  kClockSkew,
  kReplay,
  kWrongSni,    // HMAC matched a secret whose domain differs from the SNI
  kUnknownTag,  // obfuscated2 init that decrypts to no known tag with any secret
  // The handshake is allowed by no rule: TLS when AllowedProtocols::fake_tls
  // is off; an init whose tag the listener does not allow; a dd secret used
  // with tag ef/ee.
  kProtocolNotAllowed,
};
std::string_view rejection_name(Rejection r) noexcept;

// On kClockSkew, kReplay, kWrongSni and an obfuscated2 kProtocolNotAllowed
// the secret matched, so secret_index and user name whose it was (for
// metrics); the hello/init fields are set only on acceptance.
struct Identification {
  Rejection rejection = Rejection::kNone;
  std::size_t needed = 0;        // kNeedMore: total bytes to wait for (0 = unknown, read more)
  std::size_t secret_index = 0;  // into UserIndex::secrets(), when accepted
  UserId user = 0;
  bool fake_tls = false;
  std::size_t consumed = 0;          // handshake bytes (hello, or the 64-byte init)
  std::optional<ClientHello> hello;  // fake TLS
  std::optional<ClientInit> init;    // obfuscated2 (non-TLS)
  std::uint32_t tls_timestamp = 0;
};

struct IdentifyOptions {
  ClockWindow clock;
  AllowedProtocols allowed;
  // When the SNI index has no entry for the hello's domain, try every
  // fake-TLS secret (slow path; the benchmark reports its cost).
  bool try_all_on_sni_miss = true;
};

// Decides from `first_bytes`. For fake TLS it identifies from the ClientHello
// alone (the init follows in the data phase); for obfuscated2 from the first
// 64 bytes. On acceptance the replay digest (the TLS client random, or init
// bytes 8..56) is recorded in `replay` with time opts.clock.now.
// Order for TLS: SNI candidates' HMAC, then (optionally) all ee secrets
// (kWrongSni), then clock, then replay. When opts.allowed allows only fake
// TLS, bytes that cannot start a ClientHello are rejected from the first
// byte on (kNotMtproxy for plain protocols, else kProtocolNotAllowed). Secret kinds: a 16-byte
// secret allows tags ef/ee/dd, a dd secret only dd, an ee secret only fake TLS.
Identification identify(ByteSpan first_bytes, const UserIndex& index, ReplayCache& replay,
                        const IdentifyOptions& opts);

}  // namespace mtw::proto
