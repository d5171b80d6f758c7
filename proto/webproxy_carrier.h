// The carriers between our bridge page and the relay (../shared/docs/
// webproxy.md §2, §2.1): how frame batches travel over a WebSocket and over
// the long-poll HTTPS carrier, and the session tokens that tie a request to a
// session. The contract leaves this link private to the server; we follow
// the reference relay's wire format (tproxy-server) where it names one, so
// one page and one relay agree, and pure functions here hold the rules:
//  - WebSocket: subprotocol "tproxy-v1.<token>"; every binary message is one
//    batch (decode_web_batch); a text message ends the session.
//  - HTTPS: POST /api/v1/up with "X-Up-Seq: n" (1, 2, ...) and a batch body;
//    only the next n or a byte-identical retry of the last one is accepted.
//    POST /api/v1/down with "X-Down-Cursor: c": c = the next cursor gets a
//    fresh batch and "X-Down-Cursor: c+1"; c = the previous one replays the
//    last batch byte for byte.
//  - Tokens: "Authorization: Bearer <token>"; a token is HMAC-bound to its
//    kind (bootstrap or session) and expiry; bootstrap tokens are single-use.
// Pure (times are the caller's); thread-safety: plain values, one owner each.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proto/random.h"
#include "proto/replay.h"
#include "proto/tls_crypto.h"
#include "proto/webproxy_frame.h"

namespace mtw::proto {

// One carrier message (a batch) is at most this: the reference relay's hard
// cap on carrier_batch_bytes, and what the WebView boundary carries (§1.4
// rule 2 counts 2 MiB after base64, so the page splits batches into frames).
inline constexpr std::size_t kMaxWebMessageBytes = 2 * 1024 * 1024;

// --- WebSocket ---------------------------------------------------------------

// The payload of one received WebSocket message, checked as a batch carrier:
// kTextMessage for a text message, kOversized over kMaxWebMessageBytes,
// kEmptyBatch when empty. Decode the result with decode_web_batch (or pass
// it to WebSession::on_message).
[[nodiscard]] WebResult<ByteSpan> websocket_batch(bool is_text, ByteSpan payload);

// The body of a POST /api/v1/up (or the first message of a session): the
// same checks without the text case. An HTTP layer should also cap the body
// it reads at kMaxWebMessageBytes, so this never sees more.
[[nodiscard]] WebResult<ByteSpan> http_batch(ByteSpan body);

// The session token in a Sec-WebSocket-Protocol request header: the one
// comma-separated entry "tproxy-v1.<token>" (the server echoes that entry).
// kBadToken when there is none, more than one, or the token is not a
// well-formed one (token_well_formed). The view points into `header`.
[[nodiscard]] WebResult<std::string_view> websocket_session_token(std::string_view header);
inline constexpr std::string_view kWebSocketProtocolPrefix = "tproxy-v1.";

// --- HTTP headers ------------------------------------------------------------

// "Bearer <token>" (scheme case-insensitive, one space) -> the token; kBadToken.
[[nodiscard]] WebResult<std::string_view> bearer_token(std::string_view authorization);
// X-Up-Seq / X-Down-Cursor values: decimal, no sign, no leading zero (but
// "0"), at most 2^53 (what the page's JavaScript numbers hold exactly).
// kBadSequence otherwise.
[[nodiscard]] WebResult<std::uint64_t> parse_web_counter(std::string_view text);

// --- HTTPS uplink --------------------------------------------------------------

// X-Up-Seq rules for one session. Keeps only a digest of the last body.
class WebUplinkSequencer {
 public:
  enum class Verdict {
    kApply,  // the next seq: apply the body to the session, then ack
    kRetry,  // the last seq again with the same bytes: ack without applying
  };
  // kBadSequence for any other seq, or the last seq with different bytes.
  [[nodiscard]] WebResult<Verdict> on_post(std::uint64_t seq, ByteSpan body);
  std::uint64_t last_seq() const noexcept { return last_seq_; }  // 0 before the first

 private:
  std::uint64_t last_seq_ = 0;
  Sha256Digest last_digest_{};
};

// --- HTTPS downlink ------------------------------------------------------------

// X-Down-Cursor rules for one session: remembers the last batch sent until
// the page shows, by polling with the next cursor, that it arrived.
class WebDownlinkCursor {
 public:
  enum class Poll {
    kFresh,   // send a new batch (or 204 when there is none) and commit() it
    kReplay,  // send last_batch() again with X-Down-Cursor: cursor()
  };
  // kBadCursor for any cursor but cursor() and, while a batch is kept,
  // cursor() - 1. A fresh poll forgets the kept batch (it arrived).
  [[nodiscard]] WebResult<Poll> on_poll(std::uint64_t cursor);
  // After kFresh: keeps `batch` for replay and advances; returns the new
  // cursor for the X-Down-Cursor response header. Not for an empty batch
  // (a 204 does not advance).
  std::uint64_t commit(Bytes batch);
  std::uint64_t cursor() const noexcept { return next_; }
  const Bytes& last_batch() const noexcept { return last_batch_; }
  // Bytes held for replay; part of the session's memory bound.
  std::size_t held_bytes() const noexcept { return last_batch_.size(); }

 private:
  std::uint64_t next_ = 0;
  bool have_last_ = false;
  Bytes last_batch_;
};

// --- Tokens ------------------------------------------------------------------

enum class WebTokenKind : std::uint8_t { kBootstrap = 1, kSession = 2 };

// A token is base64url(kind:u8 | expires_ms:u64 | nonce:16 | mac:16), 55
// characters, where mac = HMAC-SHA256(key, "mtw-web-token-v1\0" | the first
// 25 bytes) cut to 16 bytes. The key is the server's own (never a user's
// secret), so a token proves the server issued it for that kind and time.
inline constexpr std::size_t kWebTokenChars = 55;
// 55 base64url characters (the shape only; verify() also requires the
// canonical spelling).
bool token_well_formed(std::string_view token) noexcept;

class WebTokenIssuer {
 public:
  // `key`: 32 random bytes kept for the process's life.
  explicit WebTokenIssuer(std::span<const std::byte, 32> key) noexcept;
  [[nodiscard]] std::string issue(WebTokenKind kind, std::uint64_t expires_ms,
                                  RandomSource& rnd) const;
  // kBadToken (malformed, forged, or another kind), kExpiredToken when
  // now_ms >= the expiry. Constant-time in the MAC compare.
  [[nodiscard]] WebResult<void> verify(std::string_view token, WebTokenKind kind,
                                       std::uint64_t now_ms) const;

 private:
  HmacSha256Key key_;
};

// Single use for bootstrap tokens: consume() succeeds once per token within
// the window, then kReplayedToken. A ReplayCache under the hood: a fixed
// memory bound, the oldest entries forgotten first when it is full (so keep
// max_entries above the tokens issued per window).
class WebTokenLedger {
 public:
  explicit WebTokenLedger(const ReplayCacheOptions& options) : seen_(options) {}
  // Call after verify() (which admits only canonical spellings, so the text
  // identifies the token); now_s in seconds like ReplayCache.
  [[nodiscard]] WebResult<void> consume(std::string_view token, std::int64_t now_s);

 private:
  ReplayCache seen_;
};

}  // namespace mtw::proto
