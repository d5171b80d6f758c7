// MTProxy secrets: parsing every form clients accept, formatting, generation.
// See ../shared/docs/protocol.md §1. Pure, thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "proto/bytes.h"
#include "proto/random.h"

namespace mtw::proto {

using SecretKey = std::array<std::byte, 16>;

enum class SecretKind {
  kSimple,   // 16 bytes: client may use ef, ee or dd
  kSecure,   // dd + 16 bytes: padded intermediate only
  kFakeTls,  // ee + 16 bytes + domain: fake TLS
};

struct Secret {
  SecretKey key{};
  SecretKind kind = SecretKind::kSimple;
  std::string domain;  // only for kFakeTls; 1..182 bytes, printable hostname chars

  friend bool operator==(const Secret&, const Secret&) = default;
};

// Accepts: 32 hex; "dd" + 32 hex; "ee" + 32 hex + hex(domain); or the
// base64url (or standard base64, padded or not) of those byte strings.
// Errors (kBadInput) say what is wrong without echoing the secret.
[[nodiscard]] Result<Secret> parse_secret(std::string_view text);

// Raw wire bytes: key, dd‖key, or ee‖key‖domain.
Bytes secret_bytes(const Secret& s);
std::string format_hex(const Secret& s);
std::string format_base64url(const Secret& s);

// A fresh random secret. kFakeTls needs a valid domain (else kBadInput).
[[nodiscard]] Result<Secret> generate_secret(SecretKind kind, std::string_view domain = {},
                                             RandomSource& rnd = system_random());

// Hostname check used for fake-TLS domains: 1..182 bytes of [A-Za-z0-9.-].
bool valid_tls_domain(std::string_view domain) noexcept;

// "***": what logs show instead of a secret.
inline constexpr std::string_view kRedacted = "***";

}  // namespace mtw::proto
