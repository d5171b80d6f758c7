// Crypto primitives for fake TLS and obfuscated2: SHA-256 and HMAC-SHA256
// over several spans without copying them together (HMAC also with the key's
// pads absorbed once, for the gate's per-candidate check), and X25519 public
// keys for the key_share extension. All functions are thread-safe; an
// HmacSha256Key is immutable after construction and may be shared read-only.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>

#include "proto/bytes.h"

namespace mtw::proto {

using Sha256Digest = std::array<std::byte, 32>;

// SHA-256(parts[0] ‖ parts[1] ‖ ...). No allocation.
Sha256Digest sha256(std::initializer_list<ByteSpan> parts) noexcept;

// HMAC-SHA256 with the key^ipad and key^opad blocks already compressed
// (RFC 2104 §4): mac() then costs the message's compressions plus one,
// instead of two more and two digest initialisations. Plain data (two
// SHA-256 chaining values), copyable; mac() is const, allocation-free and
// safe to call from many threads on one shared object.
class HmacSha256Key {
 public:
  HmacSha256Key() noexcept;  // the empty key
  // Keys longer than 64 bytes are not supported (ours are 16); MTW_CHECK aborts.
  explicit HmacSha256Key(ByteSpan key) noexcept;
  Sha256Digest mac(std::initializer_list<ByteSpan> parts) const noexcept;

 private:
  std::array<std::uint32_t, 8> inner_{};  // state after compressing key ^ ipad
  std::array<std::uint32_t, 8> outer_{};  // state after compressing key ^ opad
};

// HMAC-SHA256(key, parts[0] ‖ parts[1] ‖ ...). Keys longer than 64 bytes are
// not supported (ours are 16); MTW_CHECK aborts on one.
Sha256Digest hmac_sha256(ByteSpan key, std::initializer_list<ByteSpan> parts);

// The X25519 public key for a raw 32-byte private key (RFC 7748 clamping
// applied by OpenSSL). A real curve point, as a TLS key share must be.
std::array<std::byte, 32> x25519_public_key(std::span<const std::byte, 32> private_key);

}  // namespace mtw::proto
