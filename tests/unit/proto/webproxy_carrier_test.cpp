// WEB proxy carriers: WebSocket message and subprotocol rules, HTTP header
// values, the uplink seq / downlink cursor machines, and session tokens
// (forgery, kind, expiry, canonical spelling, single use).
#include "proto/webproxy_carrier.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace mtw::proto {
namespace {

using testing::hex;

class FixedRandom final : public RandomSource {
 public:
  explicit FixedRandom(std::uint8_t seed) : next_(seed) {}
  void fill(MutableByteSpan out) override {
    for (std::byte& b : out) b = std::byte(next_++);
  }

 private:
  std::uint8_t next_;
};

constexpr std::array<std::byte, 32> kKey = [] {
  std::array<std::byte, 32> k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = std::byte(i * 7 + 1);
  return k;
}();

TEST(WebSocketBatch, BinaryMessageIsTheBatch) {
  const Bytes m = hex("1100000000000000");
  const auto r = websocket_batch(false, m);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->data(), m.data());
  EXPECT_EQ(r->size(), m.size());
}

TEST(WebSocketBatch, TextMessageIsRefused) {
  EXPECT_EQ(websocket_batch(true, hex("7b7d")).error(), WebReason::kTextMessage);
}

TEST(WebSocketBatch, EmptyAndOversizedMessagesAreRefused) {
  EXPECT_EQ(websocket_batch(false, {}).error(), WebReason::kEmptyBatch);
  const Bytes big(kMaxWebMessageBytes + 1);
  EXPECT_EQ(websocket_batch(false, big).error(), WebReason::kOversized);
  const Bytes max(kMaxWebMessageBytes);
  EXPECT_TRUE(websocket_batch(false, max).has_value());
}

TEST(HttpBatch, BodyWithinTheCapIsTheBatch) {
  const Bytes body(kMaxWebMessageBytes);
  EXPECT_EQ(http_batch(body)->size(), kMaxWebMessageBytes);
  EXPECT_EQ(http_batch(Bytes(kMaxWebMessageBytes + 1)).error(), WebReason::kOversized);
  EXPECT_EQ(http_batch({}).error(), WebReason::kEmptyBatch);
}

std::string a_token() {
  FixedRandom rnd(1);
  return WebTokenIssuer(kKey).issue(WebTokenKind::kSession, 1000, rnd);
}

TEST(WebSocketProtocol, FindsTheSessionEntryAmongOthers) {
  const std::string t = a_token();
  EXPECT_EQ(websocket_session_token("tproxy-v1." + t).value(), t);
  const std::string h = "chat, tproxy-v1." + t + " ,other";
  EXPECT_EQ(websocket_session_token(h).value(), t);
}

TEST(WebSocketProtocol, MissingDuplicateOrMalformedEntryIsRefused) {
  const std::string t = a_token();
  EXPECT_EQ(websocket_session_token("chat").error(), WebReason::kBadToken);
  EXPECT_EQ(websocket_session_token("").error(), WebReason::kBadToken);
  EXPECT_EQ(websocket_session_token("tproxy-v1." + t + ",tproxy-v1." + t).error(),
            WebReason::kBadToken);
  EXPECT_EQ(websocket_session_token("tproxy-v1." + t.substr(1)).error(), WebReason::kBadToken);
  EXPECT_EQ(websocket_session_token("tproxy-v1.").error(), WebReason::kBadToken);
}

TEST(BearerToken, AcceptsTheSchemeInAnyCase) {
  const std::string t = a_token();
  EXPECT_EQ(bearer_token("Bearer " + t).value(), t);
  EXPECT_EQ(bearer_token("bEARER " + t).value(), t);
}

TEST(BearerToken, RefusesOtherSchemesAndShapes) {
  const std::string t = a_token();
  for (const std::string& h : {"Basic " + t, "Bearer  " + t, "Bearer" + t, std::string("Bearer "),
                               "Bearer " + t + "x", std::string("")}) {
    EXPECT_EQ(bearer_token(h).error(), WebReason::kBadToken) << h;
  }
}

TEST(WebCounter, ParsesCanonicalDecimal) {
  EXPECT_EQ(parse_web_counter("0").value(), 0u);
  EXPECT_EQ(parse_web_counter("17").value(), 17u);
  EXPECT_EQ(parse_web_counter("9007199254740992").value(), std::uint64_t{1} << 53);
}

TEST(WebCounter, RefusesEverythingElse) {
  for (std::string_view s : {"", "-1", "+1", "01", " 1", "1 ", "1a", "0x10", "9007199254740993",
                             "99999999999999999999"}) {
    EXPECT_EQ(parse_web_counter(s).error(), WebReason::kBadSequence) << s;
  }
}

TEST(WebUplinkSequencer, AcceptsTheNextSeqAndAByteIdenticalRetry) {
  WebUplinkSequencer q;
  EXPECT_EQ(q.on_post(1, hex("aa")).value(), WebUplinkSequencer::Verdict::kApply);
  EXPECT_EQ(q.on_post(1, hex("aa")).value(), WebUplinkSequencer::Verdict::kRetry);
  EXPECT_EQ(q.on_post(2, hex("bb")).value(), WebUplinkSequencer::Verdict::kApply);
  EXPECT_EQ(q.last_seq(), 2u);
}

TEST(WebUplinkSequencer, RefusesGapsOldSeqsAndChangedRetries) {
  WebUplinkSequencer q;
  EXPECT_EQ(q.on_post(0, hex("aa")).error(), WebReason::kBadSequence);  // starts at 1
  EXPECT_EQ(q.on_post(2, hex("aa")).error(), WebReason::kBadSequence);
  ASSERT_TRUE(q.on_post(1, hex("aa")));
  ASSERT_TRUE(q.on_post(2, hex("bb")));
  EXPECT_EQ(q.on_post(1, hex("aa")).error(), WebReason::kBadSequence);
  EXPECT_EQ(q.on_post(2, hex("bc")).error(), WebReason::kBadSequence);
  EXPECT_EQ(q.last_seq(), 2u);
}

TEST(WebDownlinkCursor, FreshPollsAdvanceOnlyWhenABatchIsCommitted) {
  WebDownlinkCursor c;
  EXPECT_EQ(c.on_poll(0).value(), WebDownlinkCursor::Poll::kFresh);  // nothing: 204
  EXPECT_EQ(c.on_poll(0).value(), WebDownlinkCursor::Poll::kFresh);
  EXPECT_EQ(c.commit(hex("0102")), 1u);
  EXPECT_EQ(c.cursor(), 1u);
}

TEST(WebDownlinkCursor, OldCursorReplaysTheLastBatchByteForByte) {
  WebDownlinkCursor c;
  ASSERT_TRUE(c.on_poll(0));
  c.commit(hex("0102"));
  EXPECT_EQ(c.on_poll(0).value(), WebDownlinkCursor::Poll::kReplay);
  EXPECT_EQ(c.last_batch(), hex("0102"));
  EXPECT_EQ(c.on_poll(0).value(), WebDownlinkCursor::Poll::kReplay);  // any number of times
}

TEST(WebDownlinkCursor, NextCursorReleasesTheKeptBatch) {
  WebDownlinkCursor c;
  ASSERT_TRUE(c.on_poll(0));
  c.commit(hex("0102"));
  EXPECT_EQ(c.on_poll(1).value(), WebDownlinkCursor::Poll::kFresh);
  EXPECT_EQ(c.held_bytes(), 0u);
  EXPECT_EQ(c.on_poll(0).error(), WebReason::kBadCursor);  // that batch was acknowledged
}

TEST(WebDownlinkCursor, FutureOrAncientCursorsAreRefused) {
  WebDownlinkCursor c;
  EXPECT_EQ(c.on_poll(1).error(), WebReason::kBadCursor);
  ASSERT_TRUE(c.on_poll(0));
  c.commit(hex("01"));
  ASSERT_TRUE(c.on_poll(1));
  c.commit(hex("02"));
  EXPECT_EQ(c.on_poll(0).error(), WebReason::kBadCursor);
  EXPECT_EQ(c.on_poll(3).error(), WebReason::kBadCursor);
}

TEST(WebToken, IssuedTokenVerifiesForItsKindUntilItExpires) {
  const WebTokenIssuer issuer(kKey);
  FixedRandom rnd(9);
  const std::string t = issuer.issue(WebTokenKind::kBootstrap, 5000, rnd);
  EXPECT_EQ(t.size(), kWebTokenChars);
  EXPECT_TRUE(issuer.verify(t, WebTokenKind::kBootstrap, 4999).has_value());
  EXPECT_EQ(issuer.verify(t, WebTokenKind::kBootstrap, 5000).error(), WebReason::kExpiredToken);
  EXPECT_EQ(issuer.verify(t, WebTokenKind::kSession, 0).error(), WebReason::kBadToken);
}

TEST(WebToken, AnotherKeyOrAFlippedCharacterIsForged) {
  FixedRandom rnd(9);
  const std::string t = WebTokenIssuer(kKey).issue(WebTokenKind::kSession, 5000, rnd);
  std::array<std::byte, 32> other = kKey;
  other[0] ^= std::byte{1};
  EXPECT_EQ(WebTokenIssuer(other).verify(t, WebTokenKind::kSession, 0).error(),
            WebReason::kBadToken);
  for (std::size_t i = 0; i + 1 < t.size(); ++i) {
    std::string bad = t;
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    EXPECT_EQ(WebTokenIssuer(kKey).verify(bad, WebTokenKind::kSession, 0).error(),
              WebReason::kBadToken)
        << i;
  }
}

TEST(WebToken, NonCanonicalSpellingIsRefused) {
  // 41 bytes in 55 characters leave 2 spare bits in the last one; setting
  // them decodes to the same bytes but must not verify.
  FixedRandom rnd(9);
  const WebTokenIssuer issuer(kKey);
  const std::string t = issuer.issue(WebTokenKind::kSession, 5000, rnd);
  const std::string_view alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const std::size_t v = alphabet.find(t.back());
  ASSERT_EQ(v & 3, 0u);
  std::string alt = t;
  alt.back() = alphabet[v | 1];
  EXPECT_EQ(issuer.verify(alt, WebTokenKind::kSession, 0).error(), WebReason::kBadToken);
}

TEST(WebToken, TokensDifferByNonce) {
  const WebTokenIssuer issuer(kKey);
  FixedRandom a(1), b(2);
  EXPECT_NE(issuer.issue(WebTokenKind::kSession, 1, a), issuer.issue(WebTokenKind::kSession, 1, b));
}

TEST(WebTokenLedger, SecondUseIsAReplay) {
  WebTokenLedger ledger({.max_entries = 16, .window_seconds = 120, .hash_key = {1, 2}});
  const std::string t = a_token();
  EXPECT_TRUE(ledger.consume(t, 100).has_value());
  EXPECT_EQ(ledger.consume(t, 101).error(), WebReason::kReplayedToken);
  FixedRandom rnd(77);
  EXPECT_TRUE(ledger.consume(WebTokenIssuer(kKey).issue(WebTokenKind::kSession, 1000, rnd), 101));
}

}  // namespace
}  // namespace mtw::proto
