#include "proto/webproxy_access.h"

#include <openssl/crypto.h>

#include <algorithm>

#include "base/url.h"
#include "proto/tls_crypto.h"

namespace mtw::proto {
namespace {

using base::fail;

constexpr std::size_t kMaxHostChars = 253;
constexpr std::size_t kMaxLabelChars = 63;
constexpr std::string_view kLabelV1 = "tdesktop-web-proxy-bridge-v1\n";
constexpr std::string_view kLabelV2 = "tdesktop-web-proxy-bridge-v2\n";
constexpr std::byte kPathSecretMarker{0x70};

bool is_alnum(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool is_b64url(char c) noexcept { return is_alnum(c) || c == '-' || c == '_'; }

// WHATWG URL "ends in a number": the last label is all decimal digits, or
// "0x"/"0X" followed by hex digits (possibly none). Such a host parses as IPv4.
bool ends_in_number(std::string_view last) noexcept {
  if (last.empty()) return false;
  if (std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return true;
  }
  if (last.size() >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X')) {
    return std::all_of(last.begin() + 2, last.end(), [](char c) {
      return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    });
  }
  return false;
}

Result<std::string> normalize_host(std::string_view h) {
  if (h.empty()) return fail(Errc::kBadInput, "web proxy host: empty");
  if (h.find("://") != std::string_view::npos) {
    return fail(Errc::kBadInput, "web proxy host: a scheme is not allowed");
  }
  for (char c : h) {
    if (c == ':')
      return fail(Errc::kBadInput, "web proxy host: a port is not allowed (always 443)");
    if (c == '?' || c == '#' || c == '@') {
      return fail(Errc::kBadInput, "web proxy host: '?', '#' and '@' are not allowed");
    }
    if (static_cast<unsigned char>(c) >= 0x80) {
      return fail(Errc::kBadInput, "web proxy host: non-ASCII; give the IDNA A-label (xn--...)");
    }
  }
  if (h.size() > kMaxHostChars) return fail(Errc::kBadInput, "web proxy host: over 253 characters");
  if (h.back() == '.') return fail(Errc::kBadInput, "web proxy host: trailing dot");
  std::string out(h);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; });
  std::size_t labels = 0;
  std::string_view last;
  std::string_view rest = out;
  while (true) {
    const std::size_t dot = rest.find('.');
    const std::string_view label = rest.substr(0, dot);
    if (label.empty()) return fail(Errc::kBadInput, "web proxy host: empty label");
    if (label.size() > kMaxLabelChars) {
      return fail(Errc::kBadInput, "web proxy host: label over 63 characters");
    }
    if (label.front() == '-' || label.back() == '-') {
      return fail(Errc::kBadInput, "web proxy host: label starts or ends with '-'");
    }
    for (char c : label) {
      if (!is_alnum(c) && c != '-') {
        return fail(Errc::kBadInput, "web proxy host: characters other than [a-z0-9.-]");
      }
    }
    ++labels;
    last = label;
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  if (labels < 2) return fail(Errc::kBadInput, "web proxy host: a single-label name");
  if (ends_in_number(last)) {
    return fail(Errc::kBadInput, "web proxy host: an IP address (or ends in a number)");
  }
  return out;
}

Result<void> check_path(std::string_view p) {
  if (p.size() > kMaxWebPathChars) {
    return fail(Errc::kBadInput, "web proxy path: over 128 characters");
  }
  std::string_view rest = p;
  while (true) {
    const std::size_t slash = rest.find('/');
    const std::string_view seg = rest.substr(0, slash);
    if (seg.empty()) return fail(Errc::kBadInput, "web proxy path: empty segment");
    if (!is_alnum(seg.front())) {
      return fail(Errc::kBadInput, "web proxy path: a segment must start with [A-Za-z0-9]");
    }
    for (char c : seg) {
      if (!is_alnum(c) && c != '_' && c != '-') {
        return fail(Errc::kBadInput, "web proxy path: characters other than [A-Za-z0-9_-/]");
      }
    }
    if (slash == std::string_view::npos) return {};
    rest.remove_prefix(slash + 1);
  }
}

Result<void> check_secret(const Secret& s) {
  if (s.kind == SecretKind::kFakeTls) {
    return fail(Errc::kBadInput, "web proxy: ee (fake-TLS) secrets are not supported");
  }
  return {};
}

// "/" or "/PATH/": the bridge page's path, as Telegram navigates to it.
std::string bridge_path(const WebProxyAddress& addr) {
  return addr.path.empty() ? std::string("/") : "/" + addr.path + "/";
}

}  // namespace

Result<WebProxyAddress> parse_web_proxy_address(std::string_view text) {
  const std::size_t slash = text.find('/');
  Result<std::string> host = normalize_host(text.substr(0, slash));
  if (!host) return tl::unexpected(host.error());
  WebProxyAddress a{std::move(*host), {}};
  if (slash != std::string_view::npos) {
    const std::string_view path = text.substr(slash + 1);
    if (Result<void> r = check_path(path); !r) return tl::unexpected(r.error());
    a.path = std::string(path);
  }
  return a;
}

Result<std::string> web_capability(const Secret& secret, const WebProxyAddress& addr) {
  if (Result<void> r = check_secret(secret); !r) return tl::unexpected(r.error());
  const Bytes key = secret_bytes(secret);  // 16 or 17 bytes: HMAC keys up to 64 are fine
  const Sha256Digest mac = addr.path.empty()
                               ? hmac_sha256(key, {as_bytes(kLabelV1), as_bytes(addr.host)})
                               : hmac_sha256(key, {as_bytes(kLabelV2), as_bytes(addr.host),
                                                   as_bytes("\n"), as_bytes(addr.path)});
  return to_base64url(mac);
}

std::string web_bridge_url(const WebProxyAddress& addr, std::string_view capability) {
  std::string url = "https://" + addr.host + bridge_path(addr) + "?bridge=";
  url += capability;
  return url;
}

std::string_view bridge_target_error_name(BridgeTargetError e) noexcept {
  switch (e) {
    case BridgeTargetError::kNotBridge:
      return "not_bridge";
    case BridgeTargetError::kNonCanonical:
      return "non_canonical";
  }
  return "unknown";
}

tl::expected<std::string_view, BridgeTargetError> parse_bridge_target(std::string_view target,
                                                                      const WebProxyAddress& addr) {
  // Only a query that names bridge= at all is ours; everything else (other
  // pages, assets, probes) belongs to the decoy.
  const std::size_t q = target.find('?');
  if (q == std::string_view::npos) return tl::unexpected(BridgeTargetError::kNotBridge);
  const std::string_view query = target.substr(q + 1);
  if (query.find("bridge=") == std::string_view::npos) {
    return tl::unexpected(BridgeTargetError::kNotBridge);
  }
  const std::string path = bridge_path(addr);
  constexpr std::string_view kKey = "bridge=";
  if (target.substr(0, q) != path || !query.starts_with(kKey) ||
      query.size() != kKey.size() + kCapabilityChars) {
    return tl::unexpected(BridgeTargetError::kNonCanonical);
  }
  const std::string_view cap = query.substr(kKey.size());
  if (!std::all_of(cap.begin(), cap.end(), is_b64url)) {
    return tl::unexpected(BridgeTargetError::kNonCanonical);
  }
  // 43 characters hold 258 bits for 256: the last one's low 2 bits are spare
  // and 0 in the canonical encoding ("AEIMQUYcgkosw048").
  constexpr std::string_view kLastCanonical = "AEIMQUYcgkosw048";
  if (kLastCanonical.find(cap.back()) == std::string_view::npos) {
    return tl::unexpected(BridgeTargetError::kNonCanonical);
  }
  return cap;
}

bool constant_time_equal(ByteSpan a, ByteSpan b) noexcept {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

CapabilityIndex::CapabilityIndex(const WebProxyAddress& addr,
                                 const std::vector<WebUserSecret>& users) {
  entries_.reserve(users.size());
  for (const WebUserSecret& u : users) {
    Result<std::string> cap = web_capability(u.secret, addr);
    if (!cap) {
      ++skipped_;
      continue;
    }
    const bool seen = std::any_of(entries_.begin(), entries_.end(),
                                  [&](const Entry& e) { return e.capability == *cap; });
    if (seen) {
      ++duplicates_;
      continue;
    }
    entries_.push_back({std::move(*cap), u.user});
  }
}

std::optional<WebUserId> CapabilityIndex::find(std::string_view capability) const noexcept {
  // No early exit: every entry is compared, and the match is selected with
  // arithmetic rather than a branch on secret-dependent data.
  WebUserId user = 0;
  unsigned found = 0;
  for (const Entry& e : entries_) {
    const unsigned eq = constant_time_equal(capability, e.capability) ? 1u : 0u;
    const unsigned take = eq & (found ^ 1u);
    const WebUserId mask = static_cast<WebUserId>(0) - static_cast<WebUserId>(take);
    user = (user & ~mask) | (e.user & mask);
    found |= eq;
  }
  if (found == 0) return std::nullopt;
  return user;
}

Result<std::vector<std::string>> web_proxy_links(const Secret& secret,
                                                 const WebProxyAddress& addr) {
  if (Result<void> r = check_secret(secret); !r) return tl::unexpected(r.error());
  std::string server = addr.host;
  std::string secret_text;
  if (addr.path.empty()) {
    secret_text = format_hex(secret);
  } else {
    server += "/" + addr.path;
    Bytes marked{kPathSecretMarker};
    const Bytes raw = secret_bytes(secret);
    marked.insert(marked.end(), raw.begin(), raw.end());
    secret_text = to_base64url(marked);
  }
  const std::string query =
      "?server=" + base::percent_encode(server) + "&secret=" + base::percent_encode(secret_text);
  return std::vector<std::string>{"tg://webproxy" + query, "https://t.me/webproxy" + query};
}

}  // namespace mtw::proto
