// WEB proxy access (tg://webproxy): who may open the bridge page. A user's
// capability is derived from their plain or dd secret and the public host
// (../shared/docs/webproxy.md §1.2); the bridge URL carries it, and the
// server maps a presented capability back to a user with a constant-time
// compare against every precomputed one. Also the client links and the
// host/path rules Telegram applies to them (§1.1). Pure; thread-safe: plain
// values, and a CapabilityIndex is immutable after construction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/bytes.h"
#include "proto/secret.h"

namespace mtw::proto {

// base64url without padding of a 32-byte HMAC-SHA256.
inline constexpr std::size_t kCapabilityChars = 43;
// Longest base path Telegram accepts (§1.1, v2).
inline constexpr std::size_t kMaxWebPathChars = 128;

// Where the bridge lives: a DNS name and an optional base path (v2). Empty
// path = the root, v1 derivation and links.
struct WebProxyAddress {
  std::string host;  // lower-case ASCII name, at least two labels, no trailing dot
  std::string path;  // "" or segments of [A-Za-z0-9][A-Za-z0-9_-]* joined by '/'
  friend bool operator==(const WebProxyAddress&, const WebProxyAddress&) = default;
};

// "HOST" or "HOST/PATH", with Telegram's host rules: no scheme, port, '?',
// '#', '@' or trailing dot; at least two labels of [a-z0-9-] (1..63, no
// leading or trailing '-'; upper case is lowered), at most 253 in all; not an
// IP literal, including names whose last label is a number ("127.1",
// "0x7f.1"), since browsers read those as IPv4. Non-ASCII (IDNA U-labels) is
// refused: pass the A-label. kBadInput with the reason.
[[nodiscard]] Result<WebProxyAddress> parse_web_proxy_address(std::string_view text);

// The bridge capability of `secret` at `addr`: base64url_nopad(HMAC-SHA256(
// key = the secret's wire bytes (dd included), msg = "tdesktop-web-proxy-
// bridge-v1\n" + host)), or with a path "...-v2\n" + host + "\n" + path.
// kBadInput for a fake-TLS (ee) secret, which Telegram refuses for WEB.
[[nodiscard]] Result<std::string> web_capability(const Secret& secret, const WebProxyAddress& addr);

// "https://HOST/?bridge=CAP", or "https://HOST/PATH/?bridge=CAP".
std::string web_bridge_url(const WebProxyAddress& addr, std::string_view capability);

// Why a request target did not name a bridge.
enum class BridgeTargetError {
  kNotBridge,     // another path or query: the decoy site's business
  kNonCanonical,  // "bridge=" present but not exactly PATH/?bridge=<43 b64url chars>
};
std::string_view bridge_target_error_name(BridgeTargetError e) noexcept;

// The capability in a request target (path + query, as in the request line)
// when it is exactly the bridge URL's: "/?bridge=CAP" or "/PATH/?bridge=CAP",
// CAP 43 characters of the base64url alphabet whose last one carries no
// spare bits. The returned view points into `target`.
[[nodiscard]] tl::expected<std::string_view, BridgeTargetError> parse_bridge_target(
    std::string_view target, const WebProxyAddress& addr);

// Equal length and bytes, in time that depends only on the length (which is
// public: capabilities are always 43 characters).
bool constant_time_equal(ByteSpan a, ByteSpan b) noexcept;
inline bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  return constant_time_equal(as_bytes(a), as_bytes(b));
}

using WebUserId = std::uint32_t;

struct WebUserSecret {
  WebUserId user = 0;
  Secret secret;
};

// Every WEB user's capability at one address, computed once. find() compares
// the presented value with every entry, matched or not, so its time does not
// reveal which user (or whether any) matched. Users with an ee secret are
// skipped (counted in skipped()); when two users share a capability (same
// secret) the first one listed wins, and duplicates() counts the others.
class CapabilityIndex {
 public:
  CapabilityIndex(const WebProxyAddress& addr, const std::vector<WebUserSecret>& users);
  [[nodiscard]] std::optional<WebUserId> find(std::string_view capability) const noexcept;
  std::size_t size() const noexcept { return entries_.size(); }
  std::size_t skipped() const noexcept { return skipped_; }
  std::size_t duplicates() const noexcept { return duplicates_; }

 private:
  struct Entry {
    std::string capability;
    WebUserId user;
  };
  std::vector<Entry> entries_;
  std::size_t skipped_ = 0;
  std::size_t duplicates_ = 0;
};

// The two client links for a WEB user, tg:// first:
//   tg://webproxy?server=S&secret=X and https://t.me/webproxy?server=S&secret=X
// S = host, or host + "/" + path percent-encoded as one value ("H%2FP"). X =
// the secret in hex (32 digits, or "dd" + 32) at the root; with a path, the
// base64url of 0x70 followed by the secret's wire bytes (Telegram's v2
// marker). No port: WEB is always 443. kBadInput for an ee secret.
[[nodiscard]] Result<std::vector<std::string>> web_proxy_links(const Secret& secret,
                                                               const WebProxyAddress& addr);

}  // namespace mtw::proto
