// WEB proxy frame codec: byte layout, round trips of every type, each
// validation reason, incremental decoding and whole-batch decoding.
#include "proto/webproxy_frame.h"

#include <gtest/gtest.h>

#include <set>

#include "test_util.h"

namespace mtw::proto {
namespace {

using testing::hex;

struct Seen {
  WebFrameType type;
  std::uint32_t id;
  Bytes payload;
  bool operator==(const Seen&) const = default;
};

std::vector<Seen> collect_batch(ByteSpan in, WebResult<std::size_t>* r = nullptr) {
  std::vector<Seen> out;
  auto res = decode_web_batch(in, [&](const WebFrame& f) {
    out.push_back({f.type, f.stream_id, Bytes(f.payload.begin(), f.payload.end())});
  });
  if (r) *r = res;
  return out;
}

WebReason batch_error(ByteSpan in) {
  WebResult<std::size_t> r;
  const auto frames = collect_batch(in, &r);
  EXPECT_FALSE(r.has_value());
  EXPECT_TRUE(frames.empty()) << "a bad batch delivered frames";
  return r ? WebReason::kNone : r.error();
}

Bytes frame(WebFrameType t, std::uint32_t id, ByteSpan payload) {
  Bytes out;
  EXPECT_TRUE(encode_web_frame(t, id, payload, out).has_value());
  return out;
}

TEST(WebFrame, HeaderIsTypeStreamId24LengthBigEndian) {
  EXPECT_EQ(frame(WebFrameType::kData, 0x123456, hex("aabbcc")), hex("0212345600000003aabbcc"));
}

TEST(WebFrame, HelloAndWelcomeAreTheContractBytes) {
  EXPECT_EQ(frame(WebFrameType::kHello, 0, hex("01")), hex("100000000000000101"));
  Bytes w;
  encode_web_welcome(w);
  EXPECT_EQ(w, hex("1100000000000000"));
}

TEST(WebFrame, WindowCarriesBigEndianCredit) {
  Bytes w;
  encode_web_window(5, 0x00400000, w);
  EXPECT_EQ(w, hex("040000050000000400400000"));
}

TEST(WebFrame, CloseIsEmpty) {
  Bytes c;
  encode_web_close(0xFFFFFF, c);
  EXPECT_EQ(c, hex("03ffffff00000000"));
}

TEST(WebFrame, EveryTypeRoundTripsThroughABatch) {
  const Bytes ping = hex("0102030405060708");
  Bytes batch;
  const std::vector<Seen> want = {
      {WebFrameType::kHello, 0, hex("01")},
      {WebFrameType::kWelcome, 0, {}},
      {WebFrameType::kOpen, 1, {}},
      {WebFrameType::kData, 1, hex("deadbeef")},
      {WebFrameType::kWindow, 1, hex("00010000")},
      {WebFrameType::kPing, 0, ping},
      {WebFrameType::kPong, 0, ping},
      {WebFrameType::kClose, 1, {}},
      {WebFrameType::kBye, 0, {}},
  };
  for (const Seen& s : want) ASSERT_TRUE(encode_web_frame(s.type, s.id, s.payload, batch));
  WebResult<std::size_t> r;
  EXPECT_EQ(collect_batch(batch, &r), want);
  EXPECT_EQ(r.value(), want.size());
}

TEST(WebFrame, LargestDataPayloadRoundTrips) {
  const Bytes big(kMaxWebFramePayload, std::byte{0x5a});
  const Bytes f = frame(WebFrameType::kData, 3, big);
  WebResult<std::size_t> r;
  const auto got = collect_batch(f, &r);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, big);
}

TEST(WebFrame, EncoderRefusesWhatTheDecoderRefuses) {
  Bytes out;
  const Bytes one = hex("00");
  EXPECT_EQ(encode_web_frame(WebFrameType::kData, 0, one, out).error(), WebReason::kBadStreamId);
  EXPECT_EQ(encode_web_frame(WebFrameType::kData, 0x1000000, one, out).error(),
            WebReason::kBadStreamId);
  EXPECT_EQ(encode_web_frame(WebFrameType::kPing, 1, {}, out).error(), WebReason::kBadStreamId);
  EXPECT_EQ(encode_web_frame(WebFrameType::kData, 1, {}, out).error(), WebReason::kBadLength);
  EXPECT_EQ(encode_web_frame(WebFrameType::kWindow, 1, one, out).error(), WebReason::kBadLength);
  EXPECT_EQ(encode_web_frame(WebFrameType::kAuthChallenge, 0, {}, out).error(),
            WebReason::kReservedType);
  const Bytes big(kMaxWebFramePayload + 1);
  EXPECT_EQ(encode_web_frame(WebFrameType::kData, 1, big, out).error(), WebReason::kOversized);
  EXPECT_TRUE(out.empty());
}

TEST(WebFrame, InMemoryFramesFollowTheSameRules) {
  const Bytes one = hex("00");
  EXPECT_TRUE(check_web_frame(WebFrame{WebFrameType::kData, 1, one}).has_value());
  EXPECT_EQ(check_web_frame(WebFrame{WebFrameType::kData, 0, one}).error(),
            WebReason::kBadStreamId);
  EXPECT_EQ(check_web_frame(WebFrame{static_cast<WebFrameType>(0x42), 0, {}}).error(),
            WebReason::kUnknownType);
}

TEST(WebFrame, UnknownTypeIsRefused) {
  EXPECT_EQ(batch_error(hex("0700000000000000")), WebReason::kUnknownType);
  EXPECT_EQ(batch_error(hex("0000000000000000")), WebReason::kUnknownType);
  EXPECT_EQ(batch_error(hex("ff00000000000000")), WebReason::kUnknownType);
}

TEST(WebFrame, EveryUnlistedTypeByteIsUnknown) {
  const std::set<int> known = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x11, 0x12, 0x13, 0x1f};
  for (int t = 0; t < 256; ++t) {
    Bytes h = hex("0000000000000000");
    h[0] = std::byte(t);
    const auto r = check_web_frame_header(h);
    if (!known.contains(t)) {
      ASSERT_FALSE(r.has_value()) << t;
      EXPECT_EQ(r.error(), WebReason::kUnknownType) << t;
    }
  }
}

TEST(WebFrame, ReservedAuthTypesAreRefused) {
  EXPECT_EQ(batch_error(hex("1200000000000000")), WebReason::kReservedType);
  EXPECT_EQ(batch_error(hex("1300000000000000")), WebReason::kReservedType);
}

TEST(WebFrame, OversizedLengthIsRefusedFromTheHeaderAlone) {
  // 1 MiB + 1 announced, no payload present: refused before buffering it.
  EXPECT_EQ(check_web_frame_header(hex("0200000100100001")).error(), WebReason::kOversized);
  EXPECT_EQ(check_web_frame_header(hex("02000001ffffffff")).error(), WebReason::kOversized);
  EXPECT_EQ(check_web_frame_header(hex("0200000100100000")).value(),
            kWebFrameHeader + kMaxWebFramePayload);
}

TEST(WebFrame, StreamFramesOnStreamZeroAreRefused) {
  EXPECT_EQ(batch_error(hex("0100000000000000")), WebReason::kBadStreamId);
  EXPECT_EQ(batch_error(hex("0200000000000001aa")), WebReason::kBadStreamId);
  EXPECT_EQ(batch_error(hex("0300000000000000")), WebReason::kBadStreamId);
  EXPECT_EQ(batch_error(hex("040000000000000400000001")), WebReason::kBadStreamId);
}

TEST(WebFrame, ControlFramesOnAStreamAreRefused) {
  EXPECT_EQ(batch_error(hex("0500000100000000")), WebReason::kBadStreamId);
  EXPECT_EQ(batch_error(hex("0600000100000000")), WebReason::kBadStreamId);
  EXPECT_EQ(batch_error(hex("100000010000000101")), WebReason::kBadStreamId);
  EXPECT_EQ(batch_error(hex("1100000100000000")), WebReason::kBadStreamId);
  EXPECT_EQ(batch_error(hex("1f00000100000000")), WebReason::kBadStreamId);
}

TEST(WebFrame, WrongLengthsForTheTypeAreRefused) {
  EXPECT_EQ(batch_error(hex("0100000100000001aa")), WebReason::kBadLength);      // OPEN non-empty
  EXPECT_EQ(batch_error(hex("0200000100000000")), WebReason::kBadLength);        // DATA empty
  EXPECT_EQ(batch_error(hex("0300000100000001aa")), WebReason::kBadLength);      // CLOSE non-empty
  EXPECT_EQ(batch_error(hex("0400000100000003000001")), WebReason::kBadLength);  // WINDOW 3
  EXPECT_EQ(batch_error(hex("1000000000000000")), WebReason::kBadLength);        // HELLO empty
  EXPECT_EQ(batch_error(hex("10000000000000020101")), WebReason::kBadLength);    // HELLO 2
  EXPECT_EQ(batch_error(hex("1100000000000001aa")), WebReason::kBadLength);  // WELCOME non-empty
  Bytes ping = hex("0500000000000041");
  ping.resize(ping.size() + 65);
  EXPECT_EQ(batch_error(ping), WebReason::kBadLength);  // PING over 64
}

TEST(WebFrame, BatchEndingInsideAFrameIsTruncated) {
  EXPECT_EQ(batch_error(hex("02000001000000")), WebReason::kTruncated);        // short header
  EXPECT_EQ(batch_error(hex("0200000100000004aabb")), WebReason::kTruncated);  // short payload
  // A good frame followed by a partial one delivers nothing.
  EXPECT_EQ(batch_error(hex("0100000100000000"
                            "02")),
            WebReason::kTruncated);
}

TEST(WebFrame, EmptyBatchIsRefused) { EXPECT_EQ(batch_error({}), WebReason::kEmptyBatch); }

TEST(WebFrame, BatchOfMoreThan4096FramesIsRefused) {
  Bytes batch;
  for (std::size_t i = 0; i < kMaxWebBatchFrames; ++i) encode_web_close(1, batch);
  WebResult<std::size_t> r;
  collect_batch(batch, &r);
  EXPECT_EQ(r.value(), kMaxWebBatchFrames);
  encode_web_close(1, batch);
  EXPECT_EQ(batch_error(batch), WebReason::kTooManyFrames);
}

TEST(WebFrame, IncrementalDecodeLeavesPartialTail) {
  Bytes stream = frame(WebFrameType::kOpen, 9, {});
  const Bytes data = frame(WebFrameType::kData, 9, hex("0102030405"));
  stream.insert(stream.end(), data.begin(), data.end() - 2);
  std::vector<Seen> got;
  const auto used = decode_web_frames(stream, [&](const WebFrame& f) {
    got.push_back({f.type, f.stream_id, Bytes(f.payload.begin(), f.payload.end())});
  });
  EXPECT_EQ(used.value(), 8u);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type, WebFrameType::kOpen);
}

TEST(WebFrame, IncrementalDecodeRefusesABadHeaderBeforeItsPayload) {
  // Header announcing 2 MiB, nothing more yet: refused now, not buffered.
  const auto r = decode_web_frames(hex("0200000100200000"), [](const WebFrame&) {});
  EXPECT_EQ(r.error(), WebReason::kOversized);
}

TEST(WebFrame, ByteAtATimeDecodingMatchesOneShot) {
  Bytes all;
  encode_web_welcome(all);
  const Bytes d = frame(WebFrameType::kData, 77, hex("00112233445566778899"));
  all.insert(all.end(), d.begin(), d.end());
  encode_web_window(77, 1234, all);
  std::vector<Seen> one;
  ASSERT_TRUE(decode_web_batch(all, [&](const WebFrame& f) {
    one.push_back({f.type, f.stream_id, Bytes(f.payload.begin(), f.payload.end())});
  }));
  std::vector<Seen> drip;
  Bytes pending;
  for (std::byte b : all) {
    pending.push_back(b);
    const auto used = decode_web_frames(pending, [&](const WebFrame& f) {
      drip.push_back({f.type, f.stream_id, Bytes(f.payload.begin(), f.payload.end())});
    });
    ASSERT_TRUE(used.has_value());
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(*used));
  }
  EXPECT_TRUE(pending.empty());
  EXPECT_EQ(drip, one);
}

TEST(WebFrame, ReasonNamesAreDistinctAndNotUnknown) {
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < kWebReasonCount; ++i) {
    const auto n = web_reason_name(static_cast<WebReason>(i));
    EXPECT_NE(n, "unknown") << i;
    names.insert(n);
  }
  EXPECT_EQ(names.size(), kWebReasonCount);
}

TEST(WebFrame, TypeNamesFollowTheContract) {
  EXPECT_EQ(web_frame_type_name(WebFrameType::kAuthChallenge), "AUTH_CHAL");
  EXPECT_EQ(web_frame_type_name(WebFrameType::kBye), "BYE");
  EXPECT_EQ(web_frame_type_name(static_cast<WebFrameType>(0x42)), "UNKNOWN");
}

}  // namespace
}  // namespace mtw::proto
