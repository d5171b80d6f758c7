// Crypto primitives for fake TLS: HMAC-SHA256 over several spans without
// copying them together, and X25519 public keys for the key_share extension.
// Thread-safe (per-thread OpenSSL digest context).
#pragma once

#include <array>
#include <initializer_list>

#include "proto/bytes.h"

namespace mtw::proto {

using Sha256Digest = std::array<std::byte, 32>;

// HMAC-SHA256(key, parts[0] ‖ parts[1] ‖ ...). Keys longer than 64 bytes are
// not supported (ours are 16); MTW_CHECK aborts on an OpenSSL failure, which
// only happens when the process is out of memory.
Sha256Digest hmac_sha256(ByteSpan key, std::initializer_list<ByteSpan> parts);

// The X25519 public key for a raw 32-byte private key (RFC 7748 clamping
// applied by OpenSSL). A real curve point, as a TLS key share must be.
std::array<std::byte, 32> x25519_public_key(std::span<const std::byte, 32> private_key);

}  // namespace mtw::proto
