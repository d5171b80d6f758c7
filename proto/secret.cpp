// MTProxy secret parsing and formatting (protocol.md §1). Every error context
// is a fixed phrase plus lengths: the input is a credential and never echoed.
#include "proto/secret.h"

#include <algorithm>

namespace mtw::proto {
namespace {

constexpr std::byte kSecureMarker{0xdd};
constexpr std::byte kFakeTlsMarker{0xee};
// TD refuses longer fake-TLS domains; a longer one would make a link clients reject.
constexpr std::size_t kMaxDomainLength = 182;

bool all_hex(std::string_view s) noexcept {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

Result<Secret> from_wire(ByteSpan raw) {
  Secret s;
  if (raw.size() == s.key.size()) {
    std::copy(raw.begin(), raw.end(), s.key.begin());
    s.kind = SecretKind::kSimple;
    return s;
  }
  if (raw.size() < s.key.size() + 1) {
    return base::fail(Errc::kBadInput,
                      "secret: too short (" + std::to_string(raw.size()) + " bytes)");
  }
  const ByteSpan key = raw.subspan(1, s.key.size());
  std::copy(key.begin(), key.end(), s.key.begin());
  if (raw[0] == kSecureMarker) {
    if (raw.size() != 17) {
      return base::fail(Errc::kBadInput,
                        "secret: dd secret must be 17 bytes, got " + std::to_string(raw.size()));
    }
    s.kind = SecretKind::kSecure;
    return s;
  }
  if (raw[0] == kFakeTlsMarker) {
    const ByteSpan domain = raw.subspan(17);
    s.domain.assign(reinterpret_cast<const char*>(domain.data()), domain.size());
    if (!valid_tls_domain(s.domain)) {
      return base::fail(Errc::kBadInput, "secret: ee domain must be 1..182 chars of [A-Za-z0-9.-]");
    }
    s.kind = SecretKind::kFakeTls;
    return s;
  }
  return base::fail(Errc::kBadInput, "secret: unknown prefix (expected dd or ee) for " +
                                         std::to_string(raw.size()) + " bytes");
}

}  // namespace

Result<Secret> parse_secret(std::string_view text) {
  if (text.empty()) return base::fail(Errc::kBadInput, "secret: empty");
  // Clients try hex first and fall back to base64 (TD ProxySecret).
  if (all_hex(text) && text.size() % 2 == 0) {
    Result<Secret> as_hex = from_wire(*from_hex(text));
    if (as_hex) return as_hex;
    // A base64url secret can, rarely, consist of hex digits only; accept it
    // when the hex reading is not a valid secret.
    Result<Bytes> raw = from_base64(text);
    if (raw) {
      Result<Secret> as_b64 = from_wire(*raw);
      if (as_b64) return as_b64;
    }
    return as_hex;
  }
  Result<Bytes> raw = from_base64(text);
  if (!raw) return base::fail(Errc::kBadInput, "secret: neither hex nor base64");
  return from_wire(*raw);
}

Bytes secret_bytes(const Secret& s) {
  Bytes out;
  out.reserve(1 + s.key.size() + s.domain.size());
  if (s.kind == SecretKind::kSecure) out.push_back(kSecureMarker);
  if (s.kind == SecretKind::kFakeTls) out.push_back(kFakeTlsMarker);
  out.insert(out.end(), s.key.begin(), s.key.end());
  if (s.kind == SecretKind::kFakeTls) {
    const ByteSpan d = as_bytes(s.domain);
    out.insert(out.end(), d.begin(), d.end());
  }
  return out;
}

std::string format_hex(const Secret& s) { return to_hex(secret_bytes(s)); }

std::string format_base64url(const Secret& s) { return to_base64url(secret_bytes(s)); }

Result<Secret> generate_secret(SecretKind kind, std::string_view domain, RandomSource& rnd) {
  Secret s;
  s.kind = kind;
  if (kind == SecretKind::kFakeTls) {
    if (!valid_tls_domain(domain)) {
      return base::fail(Errc::kBadInput,
                        "secret: fake-TLS domain must be 1..182 chars of [A-Za-z0-9.-]");
    }
    s.domain = std::string(domain);
  } else if (!domain.empty()) {
    return base::fail(Errc::kBadInput, "secret: a domain is only valid for fake-TLS secrets");
  }
  rnd.fill(s.key);
  return s;
}

bool valid_tls_domain(std::string_view domain) noexcept {
  if (domain.empty() || domain.size() > kMaxDomainLength) return false;
  return std::all_of(domain.begin(), domain.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-';
  });
}

}  // namespace mtw::proto
