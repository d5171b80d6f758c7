#include "proto/webproxy_carrier.h"

#include <algorithm>

#include "base/check.h"
#include "proto/webproxy_access.h"

namespace mtw::proto {
namespace {

constexpr std::uint64_t kMaxWebCounter = std::uint64_t{1} << 53;
constexpr std::size_t kTokenBytes = 1 + 8 + 16 + 16;
constexpr std::size_t kTokenSigned = 1 + 8 + 16;
constexpr std::string_view kTokenLabel{"mtw-web-token-v1\0", 17};

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_b64url(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

// The token's bytes, or nullopt when the text is not exactly a token's shape.
std::optional<Bytes> token_bytes(std::string_view token) {
  if (!token_well_formed(token)) return std::nullopt;
  Result<Bytes> b = from_base64(token);
  if (!b || b->size() != kTokenBytes) return std::nullopt;
  // Only the canonical spelling: the spare low bits of the last character
  // would otherwise give one token several spellings (and the single-use
  // ledger, which keys on the text, several chances).
  if (to_base64url(*b) != token) return std::nullopt;
  return std::move(*b);
}

}  // namespace

WebResult<ByteSpan> http_batch(ByteSpan body) {
  if (body.size() > kMaxWebMessageBytes) return tl::unexpected(WebReason::kOversized);
  if (body.empty()) return tl::unexpected(WebReason::kEmptyBatch);
  return body;
}

WebResult<ByteSpan> websocket_batch(bool is_text, ByteSpan payload) {
  if (is_text) return tl::unexpected(WebReason::kTextMessage);
  return http_batch(payload);
}

WebResult<std::string_view> websocket_session_token(std::string_view header) {
  std::optional<std::string_view> found;
  while (true) {
    const std::size_t comma = header.find(',');
    const std::string_view entry = trim(header.substr(0, comma));
    if (entry.starts_with(kWebSocketProtocolPrefix)) {
      if (found) return tl::unexpected(WebReason::kBadToken);
      found = entry.substr(kWebSocketProtocolPrefix.size());
    }
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  if (!found || !token_well_formed(*found)) return tl::unexpected(WebReason::kBadToken);
  return *found;
}

WebResult<std::string_view> bearer_token(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return tl::unexpected(WebReason::kBadToken);
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    char c = authorization[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    if (c != kScheme[i]) return tl::unexpected(WebReason::kBadToken);
  }
  const std::string_view token = authorization.substr(kScheme.size());
  if (!token_well_formed(token)) return tl::unexpected(WebReason::kBadToken);
  return token;
}

WebResult<std::uint64_t> parse_web_counter(std::string_view text) {
  // 2^53 has 16 digits; more is out of range before any arithmetic.
  if (text.empty() || text.size() > 16) return tl::unexpected(WebReason::kBadSequence);
  if (text.size() > 1 && text.front() == '0') return tl::unexpected(WebReason::kBadSequence);
  std::uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return tl::unexpected(WebReason::kBadSequence);
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v > kMaxWebCounter) return tl::unexpected(WebReason::kBadSequence);
  return v;
}

WebResult<WebUplinkSequencer::Verdict> WebUplinkSequencer::on_post(std::uint64_t seq,
                                                                   ByteSpan body) {
  const Sha256Digest d = sha256({body});
  if (seq == last_seq_ + 1) {
    last_seq_ = seq;
    last_digest_ = d;
    return Verdict::kApply;
  }
  if (seq != 0 && seq == last_seq_ && d == last_digest_) return Verdict::kRetry;
  return tl::unexpected(WebReason::kBadSequence);
}

WebResult<WebDownlinkCursor::Poll> WebDownlinkCursor::on_poll(std::uint64_t cursor) {
  if (cursor == next_) {
    have_last_ = false;
    Bytes().swap(last_batch_);
    return Poll::kFresh;
  }
  if (have_last_ && cursor + 1 == next_) return Poll::kReplay;
  return tl::unexpected(WebReason::kBadCursor);
}

std::uint64_t WebDownlinkCursor::commit(Bytes batch) {
  MTW_CHECK(!batch.empty());
  last_batch_ = std::move(batch);
  have_last_ = true;
  return ++next_;
}

bool token_well_formed(std::string_view token) noexcept {
  return token.size() == kWebTokenChars && std::all_of(token.begin(), token.end(), is_b64url);
}

WebTokenIssuer::WebTokenIssuer(std::span<const std::byte, 32> key) noexcept : key_(key) {}

std::string WebTokenIssuer::issue(WebTokenKind kind, std::uint64_t expires_ms,
                                  RandomSource& rnd) const {
  Bytes t(kTokenBytes);
  t[0] = static_cast<std::byte>(kind);
  store_be32(t.data() + 1, static_cast<std::uint32_t>(expires_ms >> 32));
  store_be32(t.data() + 5, static_cast<std::uint32_t>(expires_ms));
  rnd.fill(MutableByteSpan(t).subspan(9, 16));
  const Sha256Digest mac = key_.mac({as_bytes(kTokenLabel), ByteSpan(t).first(kTokenSigned)});
  std::copy_n(mac.begin(), 16, t.begin() + kTokenSigned);
  return to_base64url(t);
}

WebResult<void> WebTokenIssuer::verify(std::string_view token, WebTokenKind kind,
                                       std::uint64_t now_ms) const {
  const std::optional<Bytes> t = token_bytes(token);
  if (!t) return tl::unexpected(WebReason::kBadToken);
  const Sha256Digest mac = key_.mac({as_bytes(kTokenLabel), ByteSpan(*t).first(kTokenSigned)});
  if (!constant_time_equal(ByteSpan(mac).first(16), ByteSpan(*t).subspan(kTokenSigned))) {
    return tl::unexpected(WebReason::kBadToken);
  }
  if ((*t)[0] != static_cast<std::byte>(kind)) return tl::unexpected(WebReason::kBadToken);
  const std::uint64_t expires_ms =
      (std::uint64_t{load_be32(t->data() + 1)} << 32) | load_be32(t->data() + 5);
  if (now_ms >= expires_ms) return tl::unexpected(WebReason::kExpiredToken);
  return {};
}

WebResult<void> WebTokenLedger::consume(std::string_view token, std::int64_t now_s) {
  if (seen_.check_and_insert(as_bytes(token), now_s)) {
    return tl::unexpected(WebReason::kReplayedToken);
  }
  return {};
}

}  // namespace mtw::proto
