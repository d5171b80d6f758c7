// WEB proxy session: handshake, stream table and limits, tombstones, flow
// control wiring, PING/PONG, BYE, the outbound queue bound, and which faults
// end the session versus one stream.
#include "proto/webproxy_session.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace mtw::proto {
namespace {

using testing::hex;

Bytes hello() { return hex("100000000000000101"); }
Bytes open(std::uint32_t id) {
  Bytes b;
  EXPECT_TRUE(encode_web_frame(WebFrameType::kOpen, id, {}, b));
  return b;
}
Bytes data(std::uint32_t id, std::size_t n, std::byte fill = std::byte{0x61}) {
  Bytes b;
  EXPECT_TRUE(encode_web_frame(WebFrameType::kData, id, Bytes(n, fill), b));
  return b;
}
Bytes window(std::uint32_t id, std::uint32_t credit) {
  Bytes b;
  encode_web_window(id, credit, b);
  return b;
}
Bytes close(std::uint32_t id) {
  Bytes b;
  encode_web_close(id, b);
  return b;
}
Bytes control(WebFrameType t, ByteSpan payload = {}) {
  Bytes b;
  EXPECT_TRUE(encode_web_frame(t, 0, payload, b));
  return b;
}
Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

struct Out {
  WebFrameType type;
  std::uint32_t id;
  Bytes payload;
  bool operator==(const Out&) const = default;
};
std::vector<Out> drain(WebSession& s) {
  std::vector<Out> out;
  const Bytes all = s.take_outbound(SIZE_MAX);
  if (all.empty()) return out;
  EXPECT_TRUE(decode_web_batch(all, [&](const WebFrame& f) {
    out.push_back({f.type, f.stream_id, Bytes(f.payload.begin(), f.payload.end())});
  }));
  return out;
}

class WebSessionTest : public ::testing::Test {
 protected:
  WebSession make(WebSessionLimits limits = {}) {
    auto s = WebSession::start(limits, budget_);
    EXPECT_TRUE(s.has_value());
    return std::move(*s);
  }
  // A session past the handshake with WELCOME drained.
  WebSession ready(WebSessionLimits limits = {}) {
    WebSession s = make(limits);
    EXPECT_TRUE(s.on_message(hello(), ev_));
    drain(s);
    return s;
  }
  WebUserBudget budget_{4, 8};
  std::vector<WebEvent> ev_;
};

TEST_F(WebSessionTest, HelloIsAnsweredWithExactlyOneWelcome) {
  WebSession s = make();
  EXPECT_EQ(s.state(), WebSessionState::kAwaitHello);
  ASSERT_TRUE(s.on_message(hello(), ev_));
  EXPECT_EQ(s.state(), WebSessionState::kOpen);
  EXPECT_EQ(s.take_outbound(SIZE_MAX), hex("1100000000000000"));
  EXPECT_TRUE(ev_.empty());
}

TEST_F(WebSessionTest, FirstFrameOtherThanHelloEndsTheSession) {
  WebSession s = make();
  EXPECT_EQ(s.on_message(open(1), ev_).error(), WebReason::kBadHello);
  EXPECT_EQ(s.state(), WebSessionState::kClosed);
  EXPECT_EQ(s.close_reason(), WebReason::kBadHello);
  EXPECT_EQ(s.outbound_frames(), 0u);
}

TEST_F(WebSessionTest, HelloWithAnotherVersionEndsTheSession) {
  WebSession s = make();
  EXPECT_EQ(s.on_message(hex("100000000000000102"), ev_).error(), WebReason::kBadHello);
}

TEST_F(WebSessionTest, SecondHelloEndsTheSession) {
  WebSession s = ready();
  EXPECT_EQ(s.on_message(hello(), ev_).error(), WebReason::kBadHello);
}

TEST_F(WebSessionTest, HelloAndOpenInOneMessageBothApply) {
  WebSession s = make();
  ASSERT_TRUE(s.on_message(cat({hello(), open(3)}), ev_));
  ASSERT_EQ(ev_.size(), 1u);
  EXPECT_EQ(ev_[0].kind, WebEvent::Kind::kOpened);
  EXPECT_EQ(ev_[0].stream_id, 3u);
}

TEST_F(WebSessionTest, DataIsReportedAsASpanIntoTheMessage) {
  WebSession s = ready();
  const Bytes msg = cat({open(5), data(5, 10)});
  ASSERT_TRUE(s.on_message(msg, ev_));
  ASSERT_EQ(ev_.size(), 2u);
  EXPECT_EQ(ev_[1].kind, WebEvent::Kind::kData);
  EXPECT_EQ(ev_[1].data.size(), 10u);
  EXPECT_EQ(ev_[1].data.data(), msg.data() + 8 + 8);
  EXPECT_EQ(s.uplink_buffered(), 10u);
}

TEST_F(WebSessionTest, NoWindowIsSentForDataNotYetDelivered) {
  WebSession s = ready();
  ASSERT_TRUE(s.on_message(cat({open(5), data(5, 1000)}), ev_));
  s.on_tick(1'000'000);
  EXPECT_TRUE(drain(s).empty());
  EXPECT_EQ(s.next_deadline_ms(), std::nullopt);
}

TEST_F(WebSessionTest, DeliveredBytesAreGrantedBackAfterTheDelay) {
  WebSession s = ready();
  ASSERT_TRUE(s.on_message(cat({open(5), data(5, 1000)}), ev_));
  s.on_delivered(5, 600, 100);
  EXPECT_EQ(s.uplink_buffered(), 400u);
  EXPECT_TRUE(drain(s).empty());
  EXPECT_EQ(s.next_deadline_ms(), 100 + kWebGrantDelayMs);
  s.on_tick(100 + kWebGrantDelayMs);
  EXPECT_EQ(drain(s), (std::vector<Out>{{WebFrameType::kWindow, 5, hex("00000258")}}));
}

TEST_F(WebSessionTest, BatchSizedDeliveryIsGrantedImmediately) {
  WebSession s = ready();
  Bytes msg = open(5);
  for (int i = 0; i < 4; ++i) msg = cat({msg, data(5, 64 * 1024)});
  ASSERT_TRUE(s.on_message(msg, ev_));
  s.on_delivered(5, 256 * 1024, 7);
  EXPECT_EQ(drain(s), (std::vector<Out>{{WebFrameType::kWindow, 5, hex("00040000")}}));
}

TEST_F(WebSessionTest, OverrunClosesOnlyThatStream) {
  WebSession s = ready();
  Bytes msg = cat({open(1), open(2)});
  for (int i = 0; i < 64; ++i) msg = cat({msg, data(1, 64 * 1024)});  // exactly 4 MiB
  ASSERT_TRUE(s.on_message(msg, ev_));
  ev_.clear();
  ASSERT_TRUE(s.on_message(data(1, 1), ev_));
  ASSERT_EQ(ev_.size(), 1u);
  EXPECT_EQ(ev_[0].kind, WebEvent::Kind::kClosed);
  EXPECT_EQ(ev_[0].reason, WebReason::kWindowOverrun);
  EXPECT_EQ(drain(s), (std::vector<Out>{{WebFrameType::kClose, 1, {}}}));
  EXPECT_FALSE(s.stream_open(1));
  EXPECT_TRUE(s.stream_open(2));
  EXPECT_EQ(s.uplink_buffered(), 0u);  // the closed stream's bytes no longer count
  EXPECT_EQ(s.stream_closes(WebReason::kWindowOverrun), 1u);
  EXPECT_EQ(s.state(), WebSessionState::kOpen);
}

TEST_F(WebSessionTest, DataForAnUnknownStreamIsAnsweredWithOneClose) {
  WebSession s = ready();
  ASSERT_TRUE(s.on_message(data(9, 4), ev_));
  ASSERT_TRUE(s.on_message(data(9, 4), ev_));
  EXPECT_TRUE(ev_.empty());
  EXPECT_EQ(drain(s), (std::vector<Out>{{WebFrameType::kClose, 9, {}}}));
  EXPECT_EQ(s.stream_closes(WebReason::kUnknownStream), 1u);
  EXPECT_EQ(s.late_frames(), 1u);
}

TEST_F(WebSessionTest, WindowForAnUnknownStreamIsAnsweredWithClose) {
  WebSession s = ready();
  ASSERT_TRUE(s.on_message(window(4, 10), ev_));
  EXPECT_EQ(drain(s), (std::vector<Out>{{WebFrameType::kClose, 4, {}}}));
  EXPECT_EQ(s.stream_closes(WebReason::kUnknownStream), 1u);
}

TEST_F(WebSessionTest, PeerCloseReportsAndLateFramesAreDropped) {
  WebSession s = ready();
  ASSERT_TRUE(s.on_message(cat({open(1), close(1)}), ev_));
  ASSERT_EQ(ev_.size(), 2u);
  EXPECT_EQ(ev_[1].kind, WebEvent::Kind::kClosed);
  EXPECT_EQ(ev_[1].reason, WebReason::kPeerClose);
  EXPECT_EQ(budget_.streams(), 0u);
  ASSERT_TRUE(s.on_message(cat({data(1, 3), window(1, 5), close(1)}), ev_));
  EXPECT_EQ(ev_.size(), 2u);
  EXPECT_TRUE(drain(s).empty());
  EXPECT_EQ(s.late_frames(), 3u);
}

TEST_F(WebSessionTest, CloseForAnUnknownStreamIsCountedAndIgnored) {
  WebSession s = ready();
  ASSERT_TRUE(s.on_message(close(8), ev_));
  EXPECT_TRUE(drain(s).empty());
  EXPECT_EQ(s.stream_closes(WebReason::kUnknownStream), 1u);
}

TEST_F(WebSessionTest, ReopeningAnOpenOrClosedIdEndsTheSession) {
  WebSession a = ready();
  EXPECT_EQ(a.on_message(cat({open(1), open(1)}), ev_).error(), WebReason::kDuplicateOpen);
  WebSession b = ready();
  EXPECT_EQ(b.on_message(cat({open(1), close(1), open(1)}), ev_).error(),
            WebReason::kDuplicateOpen);
}

TEST_F(WebSessionTest, OpenOverTheSessionLimitIsRefusedWithClose) {
  WebSession s = ready({.max_streams = 2});
  ASSERT_TRUE(s.on_message(cat({open(1), open(2), open(3)}), ev_));
  EXPECT_EQ(ev_.size(), 2u);
  EXPECT_EQ(drain(s), (std::vector<Out>{{WebFrameType::kClose, 3, {}}}));
  EXPECT_EQ(s.stream_closes(WebReason::kStreamLimit), 1u);
  EXPECT_FALSE(s.stream_open(3));
}

TEST_F(WebSessionTest, OpenOverTheUserLimitIsRefusedAcrossSessions) {
  WebUserBudget budget(2, 3);
  auto a = WebSession::start({}, budget);
  auto b = WebSession::start({}, budget);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->on_message(cat({hello(), open(1), open(2)}), ev_));
  ASSERT_TRUE(b->on_message(cat({hello(), open(3), open(4)}), ev_));
  EXPECT_TRUE(b->stream_open(3));
  EXPECT_FALSE(b->stream_open(4));
  EXPECT_EQ(b->stream_closes(WebReason::kStreamLimit), 1u);
  EXPECT_EQ(budget.streams(), 3u);
}

TEST_F(WebSessionTest, UserSessionLimitAndReleaseOnDestruction) {
  WebUserBudget budget(1, 8);
  {
    auto a = WebSession::start({}, budget);
    ASSERT_TRUE(a);
    ASSERT_TRUE(a->on_message(cat({hello(), open(1), open(2)}), ev_));
    EXPECT_FALSE(WebSession::start({}, budget).has_value());
    EXPECT_EQ(budget.streams(), 2u);
    WebSession moved(std::move(*a));  // the moved-from one must not release again
  }
  EXPECT_EQ(budget.sessions(), 0u);
  EXPECT_EQ(budget.streams(), 0u);
  EXPECT_TRUE(WebSession::start({}, budget).has_value());
}

TEST_F(WebSessionTest, WindowFromTheAppRaisesTheAllowance) {
  WebSession s = ready();
  ASSERT_TRUE(s.on_message(open(1), ev_));
  for (int i = 0; i < 64; ++i) {
    s.send_data(1, Bytes(64 * 1024));
    (void)s.take_outbound(SIZE_MAX);
  }
  EXPECT_EQ(s.downlink_allowance(1), 0u);
  ASSERT_TRUE(s.on_message(window(1, 100), ev_));
  EXPECT_EQ(s.downlink_allowance(1), 100u);
}

TEST_F(WebSessionTest, ZeroWindowClosesTheStream) {
  WebSession s = ready();
  ASSERT_TRUE(s.on_message(cat({open(1), window(1, 0)}), ev_));
  EXPECT_EQ(ev_.back().reason, WebReason::kZeroWindow);
  EXPECT_EQ(drain(s), (std::vector<Out>{{WebFrameType::kClose, 1, {}}}));
  EXPECT_EQ(s.stream_closes(WebReason::kZeroWindow), 1u);
}

TEST_F(WebSessionTest, SentDataIsQueuedAsDataFrames) {
  WebSession s = ready();
  ASSERT_TRUE(s.on_message(open(1), ev_));
  s.send_data(1, hex("0102"));
  EXPECT_EQ(drain(s), (std::vector<Out>{{WebFrameType::kData, 1, hex("0102")}}));
  EXPECT_EQ(s.flow(1)->downlink_credit(), kWebInitialWindow - 2);
}

TEST_F(WebSessionTest, AllowanceIsBoundedByTheOutboundQueue) {
  WebSession s = ready({.max_outbound_bytes = 1000});
  ASSERT_TRUE(s.on_message(open(1), ev_));
  // Room minus this frame's header minus the 8 bytes kept for the stream's CLOSE.
  EXPECT_EQ(s.downlink_allowance(1), 1000u - 2 * kWebFrameHeader);
  s.send_data(1, Bytes(984));
  EXPECT_EQ(s.downlink_allowance(1), 0u);
  EXPECT_EQ(s.downlink_allowance(2), 0u);  // not open
}

TEST_F(WebSessionTest, TakeOutboundReturnsWholeFramesWithinTheLimit) {
  WebSession s = ready();
  ASSERT_TRUE(s.on_message(open(1), ev_));
  s.send_data(1, Bytes(100));
  s.send_data(1, Bytes(100));
  EXPECT_EQ(s.take_outbound(150).size(), 108u);  // one frame; the second does not fit
  EXPECT_EQ(s.take_outbound(50).size(), 108u);   // the first frame always goes
  EXPECT_TRUE(s.take_outbound(SIZE_MAX).empty());
  EXPECT_EQ(s.outbound_bytes(), 0u);
}

TEST_F(WebSessionTest, ControlRepliesBeyondTheQueueBoundEndTheSession) {
  WebSession s = ready({.max_outbound_bytes = 40});
  ASSERT_TRUE(s.on_message(cat({open(1), open(2)}), ev_));
  const Bytes ping = control(WebFrameType::kPing, hex("00112233"));
  // 2 * 8 bytes reserved for the streams' CLOSEs + 2 * 12 bytes of PONG = 40.
  ASSERT_TRUE(s.on_message(cat({ping, ping}), ev_));
  ev_.clear();
  EXPECT_EQ(s.on_message(ping, ev_).error(), WebReason::kBufferLimit);
  ASSERT_EQ(ev_.size(), 2u);
  EXPECT_EQ(ev_[0].reason, WebReason::kBufferLimit);
  EXPECT_LE(s.outbound_bytes(), 40u);
  EXPECT_EQ(budget_.streams(), 0u);
}

TEST_F(WebSessionTest, WindowWaitsForRoomInsteadOfFailingTheSession) {
  WebSession s = ready({.max_outbound_bytes = 200});
  ASSERT_TRUE(s.on_message(cat({open(1), data(1, 50)}), ev_));
  s.send_data(1, Bytes(s.downlink_allowance(1)));  // the queue is now full
  s.on_delivered(1, 50, 10);
  s.on_tick(10 + kWebGrantDelayMs);
  EXPECT_EQ(s.state(), WebSessionState::kOpen);
  EXPECT_EQ(s.outbound_frames(), 1u);
  EXPECT_EQ(s.next_deadline_ms(), std::nullopt);
  (void)s.take_outbound(SIZE_MAX);
  EXPECT_EQ(s.next_deadline_ms(), 10 + kWebGrantDelayMs);  // overdue: tick now
  s.on_tick(100);
  EXPECT_EQ(drain(s), (std::vector<Out>{{WebFrameType::kWindow, 1, hex("00000032")}}));
}

TEST_F(WebSessionTest, LocalCloseIsQueuedEvenWhenTheQueueIsFull) {
  WebSession s = ready({.max_outbound_bytes = 100});
  ASSERT_TRUE(s.on_message(open(1), ev_));
  s.send_data(1, Bytes(s.downlink_allowance(1)));
  s.close_stream(1);
  EXPECT_EQ(s.state(), WebSessionState::kOpen);
  const auto out = drain(s);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1], (Out{WebFrameType::kClose, 1, {}}));
}

TEST_F(WebSessionTest, OpenWithNoRoomForItsCloseEndsTheSession) {
  WebSession s = ready({.max_outbound_bytes = 30});
  ASSERT_TRUE(s.on_message(open(1), ev_));
  const Bytes ping = control(WebFrameType::kPing, hex("0011"));
  ASSERT_TRUE(s.on_message(ping, ev_));     // 8 reserved + 10 queued
  ASSERT_TRUE(s.on_message(open(2), ev_));  // 16 reserved + 10 queued
  EXPECT_EQ(s.on_message(open(3), ev_).error(), WebReason::kBufferLimit);
}

TEST_F(WebSessionTest, PingFromTheAppIsAnsweredWithPong) {
  WebSession s = ready();
  ASSERT_TRUE(s.on_message(control(WebFrameType::kPing, hex("abcd")), ev_));
  EXPECT_EQ(drain(s), (std::vector<Out>{{WebFrameType::kPong, 0, hex("abcd")}}));
}

TEST_F(WebSessionTest, PongMustEchoThePingInFlight) {
  WebSession s = ready();
  ASSERT_TRUE(s.send_ping(hex("0102")));
  EXPECT_FALSE(s.send_ping(hex("03")));  // one at a time
  EXPECT_EQ(drain(s), (std::vector<Out>{{WebFrameType::kPing, 0, hex("0102")}}));
  ASSERT_TRUE(s.on_message(control(WebFrameType::kPong, hex("0102")), ev_));
  EXPECT_FALSE(s.ping_in_flight());
  ASSERT_TRUE(s.send_ping(hex("03")));
  EXPECT_EQ(s.on_message(control(WebFrameType::kPong, hex("04")), ev_).error(),
            WebReason::kBadPong);
}

TEST_F(WebSessionTest, PongWithoutPingEndsTheSession) {
  WebSession s = ready();
  EXPECT_EQ(s.on_message(control(WebFrameType::kPong), ev_).error(), WebReason::kBadPong);
}

TEST_F(WebSessionTest, ByeFromTheAppClosesEveryStream) {
  WebSession s = ready();
  ASSERT_TRUE(s.on_message(cat({open(2), open(1)}), ev_));
  ev_.clear();
  EXPECT_EQ(s.on_message(control(WebFrameType::kBye), ev_).error(), WebReason::kPeerClose);
  ASSERT_EQ(ev_.size(), 2u);
  EXPECT_EQ(ev_[0].stream_id, 1u);  // in id order
  EXPECT_EQ(ev_[1].stream_id, 2u);
  EXPECT_EQ(ev_[0].reason, WebReason::kPeerClose);
  EXPECT_EQ(s.open_streams(), 0u);
}

TEST_F(WebSessionTest, RelayByeIsQueuedLastAndClosesTheSession) {
  WebSession s = ready();
  ASSERT_TRUE(s.on_message(open(1), ev_));
  ev_.clear();
  s.send_bye(ev_);
  EXPECT_EQ(s.state(), WebSessionState::kClosed);
  EXPECT_EQ(s.close_reason(), WebReason::kLocalClose);
  ASSERT_EQ(ev_.size(), 1u);
  EXPECT_EQ(drain(s), (std::vector<Out>{{WebFrameType::kBye, 0, {}}}));
}

TEST_F(WebSessionTest, WelcomeFromTheAppIsUnexpected) {
  WebSession s = ready();
  EXPECT_EQ(s.on_message(hex("1100000000000000"), ev_).error(), WebReason::kUnexpectedFrame);
}

TEST_F(WebSessionTest, MalformedMessageEndsTheSessionAndAppliesNothing) {
  WebSession s = ready();
  ASSERT_TRUE(s.on_message(open(1), ev_));
  ev_.clear();
  EXPECT_EQ(s.on_message(cat({open(2), hex("0200000100000004aa")}), ev_).error(),
            WebReason::kTruncated);
  ASSERT_EQ(ev_.size(), 1u);  // only stream 1's close; OPEN(2) was never applied
  EXPECT_EQ(ev_[0].stream_id, 1u);
  EXPECT_EQ(ev_[0].reason, WebReason::kTruncated);
}

TEST_F(WebSessionTest, SingleFramesAreCheckedLikeDecodedOnes) {
  WebSession s = ready();
  const Bytes one = hex("00");
  ASSERT_TRUE(s.on_frame(WebFrame{WebFrameType::kOpen, 4, {}}, ev_));
  ASSERT_TRUE(s.on_frame(WebFrame{WebFrameType::kData, 4, one}, ev_));
  EXPECT_EQ(ev_.back().kind, WebEvent::Kind::kData);
  EXPECT_EQ(s.on_frame(WebFrame{WebFrameType::kData, 0, one}, ev_).error(),
            WebReason::kBadStreamId);
  EXPECT_EQ(ev_.back().reason, WebReason::kBadStreamId);  // stream 4 closed with it
}

TEST_F(WebSessionTest, ClosedSessionIgnoresInputAndRepeatsItsReason) {
  WebSession s = make();
  (void)s.on_message(open(1), ev_);
  ev_.clear();
  EXPECT_EQ(s.on_message(hello(), ev_).error(), WebReason::kBadHello);
  EXPECT_TRUE(ev_.empty());
  EXPECT_EQ(s.outbound_frames(), 0u);
}

TEST_F(WebSessionTest, LocalCloseQueuesCloseAndTombstones) {
  WebSession s = ready();
  ASSERT_TRUE(s.on_message(open(1), ev_));
  ev_.clear();
  s.close_stream(1);
  EXPECT_TRUE(ev_.empty());
  EXPECT_EQ(drain(s), (std::vector<Out>{{WebFrameType::kClose, 1, {}}}));
  EXPECT_EQ(s.stream_closes(WebReason::kLocalClose), 1u);
  ASSERT_TRUE(s.on_message(data(1, 5), ev_));  // in flight when we closed: dropped
  EXPECT_EQ(s.late_frames(), 1u);
  EXPECT_TRUE(drain(s).empty());
}

TEST_F(WebSessionTest, TombstonesAreBoundedOldestFirst) {
  WebSession s = ready({.tombstones = 2});
  ASSERT_TRUE(s.on_message(cat({open(1), close(1), open(2), close(2), open(3), close(3)}), ev_));
  ASSERT_TRUE(s.on_message(cat({data(3, 1), data(1, 1)}), ev_));
  EXPECT_EQ(s.late_frames(), 1u);                                          // 3 remembered
  EXPECT_EQ(drain(s), (std::vector<Out>{{WebFrameType::kClose, 1, {}}}));  // 1 forgotten
}

TEST_F(WebSessionTest, DeliveryForAGoneStreamIsIgnored) {
  WebSession s = ready();
  ASSERT_TRUE(s.on_message(cat({open(1), data(1, 10), close(1)}), ev_));
  s.on_delivered(1, 10, 5);
  s.on_tick(1000);
  EXPECT_TRUE(drain(s).empty());
  EXPECT_EQ(s.uplink_buffered(), 0u);
}

}  // namespace
}  // namespace mtw::proto
