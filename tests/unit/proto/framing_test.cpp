#include "proto/framing.h"

#include <gtest/gtest.h>

#include <set>

#include "test_util.h"

namespace mtw::proto {
namespace {

using testing::hex;
using testing::random_bytes;

// A decoded frame with its payload copied out of the sink call.
struct Got {
  Frame::Kind kind;
  Bytes payload;
  bool qa_requested;
  std::uint32_t quick_ack;
  std::int32_t error_code;
  friend bool operator==(const Got&, const Got&) = default;
};

Result<std::size_t> decode(Transport t, Direction d, ByteSpan in, std::vector<Got>& out) {
  return decode_frames(t, d, in, [&](const Frame& f) {
    out.push_back({f.kind, Bytes(f.payload.begin(), f.payload.end()), f.quick_ack_requested,
                   f.quick_ack, f.error_code});
  });
}

// Feeds `wire` in chunks and keeps the tail like the worker does.
std::vector<Got> decode_in_chunks(Transport t, Direction d, ByteSpan wire, RandomSource& rnd) {
  std::vector<Got> got;
  Bytes pending;
  std::size_t pos = 0;
  while (pos < wire.size()) {
    const std::size_t n = std::min<std::size_t>(rnd.uniform(1, 300), wire.size() - pos);
    pending.insert(pending.end(), wire.begin() + pos, wire.begin() + pos + n);
    pos += n;
    const Result<std::size_t> used = decode(t, d, pending, got);
    EXPECT_TRUE(used.has_value());
    if (!used) return got;
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(*used));
  }
  EXPECT_TRUE(pending.empty());
  return got;
}

Bytes words(std::size_t n, std::uint8_t fill) { return Bytes(n * 4, std::byte{fill}); }

TEST(Framing, TransportFollowsProtocolTag) {
  EXPECT_EQ(transport_for(ProtoTag::kAbridged), Transport::kAbridged);
  EXPECT_EQ(transport_for(ProtoTag::kIntermediate), Transport::kIntermediate);
  EXPECT_EQ(transport_for(ProtoTag::kPadded), Transport::kPadded);
}

TEST(AbridgedEncode, UsesOneByteBelow0x7fWords) {
  Bytes out;
  ASSERT_TRUE(encode_packet(Transport::kAbridged, words(2, 0xaa), false, out).has_value());
  EXPECT_EQ(to_hex(out), "02aaaaaaaaaaaaaaaa");
  out.clear();
  ASSERT_TRUE(encode_packet(Transport::kAbridged, words(0x7e, 0), true, out).has_value());
  EXPECT_EQ(std::to_integer<int>(out[0]), 0xfe);  // 0x7e | quick-ack bit
  EXPECT_EQ(out.size(), 1 + 0x7e * 4u);
}

TEST(AbridgedEncode, UsesLongFormFrom0x7fWords) {
  Bytes out;
  ASSERT_TRUE(encode_packet(Transport::kAbridged, words(0x7f, 0), false, out).has_value());
  EXPECT_EQ(to_hex(ByteSpan(out).first(4)), "7f7f0000");
  out.clear();
  ASSERT_TRUE(encode_packet(Transport::kAbridged, words(0x10203, 0), true, out).has_value());
  EXPECT_EQ(to_hex(ByteSpan(out).first(4)), "ff030201");
}

TEST(IntermediateEncode, WritesLittleEndianLengthWithQuickAckBit) {
  Bytes out;
  ASSERT_TRUE(encode_packet(Transport::kIntermediate, words(2, 1), true, out).has_value());
  EXPECT_EQ(to_hex(out),
            "0800008001010101"
            "01010101");
}

TEST(PaddedEncode, LengthCountsUpTo15PaddingBytesTowardServer) {
  SeededRandom rnd(21);
  std::set<std::size_t> pads;
  for (int i = 0; i < 400; ++i) {
    Bytes out;
    ASSERT_TRUE(encode_packet(Transport::kPadded, words(3, 7), false, out, &rnd).has_value());
    const std::uint32_t len = load_le32(out.data());
    ASSERT_EQ(out.size(), 4 + len);
    ASSERT_GE(len, 12u);
    ASSERT_LE(len, 12u + 15);
    pads.insert(len - 12);
  }
  EXPECT_EQ(pads.size(), 16u);
}

TEST(PaddedEncode, PadsAtMost3BytesTowardClient) {
  SeededRandom rnd(22);
  for (int i = 0; i < 200; ++i) {
    Bytes out;
    ASSERT_TRUE(
        encode_packet(Transport::kPadded, words(3, 7), false, out, &rnd, Direction::kToClient)
            .has_value());
    ASSERT_LE(load_le32(out.data()), 15u);
  }
}

TEST(FramingEncode, RejectsUnalignedEmptyOversizedAndClientQuickAck) {
  Bytes out;
  for (Transport t : {Transport::kAbridged, Transport::kIntermediate, Transport::kPadded}) {
    EXPECT_EQ(encode_packet(t, Bytes(5), false, out).error().code, Errc::kBadInput);
    EXPECT_EQ(encode_packet(t, Bytes{}, false, out).error().code, Errc::kBadInput);
    EXPECT_EQ(encode_packet(t, Bytes(kMaxFramePayload + 4), false, out).error().code,
              Errc::kTooLarge);
    EXPECT_EQ(encode_packet(t, Bytes(8), true, out, nullptr, Direction::kToClient).error().code,
              Errc::kBadInput);
  }
  EXPECT_TRUE(out.empty());
}

TEST(QuickAck, AbridgedIsByteSwappedOthersLittleEndian) {
  Bytes out;
  encode_quick_ack(Transport::kAbridged, 0x81020304, out);
  EXPECT_EQ(to_hex(out), "81020304");
  out.clear();
  encode_quick_ack(Transport::kIntermediate, 0x81020304, out);
  EXPECT_EQ(to_hex(out), "04030281");
  out.clear();
  encode_quick_ack(Transport::kPadded, 0x01020304, out);  // top bit forced
  EXPECT_EQ(to_hex(out), "04030281");
}

TEST(TransportError, IsAFramed4BytePacketTheClientReadsAsError) {
  Bytes out;
  encode_transport_error(Transport::kAbridged, -404, out);
  EXPECT_EQ(to_hex(out), "016cfeffff");
  out.clear();
  encode_transport_error(Transport::kIntermediate, -429, out);
  EXPECT_EQ(to_hex(out), "0400000053feffff");
  std::vector<Got> got;
  ASSERT_TRUE(decode(Transport::kIntermediate, Direction::kToClient, out, got).has_value());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].kind, Frame::Kind::kTransportError);
  EXPECT_EQ(got[0].error_code, -429);
}

TEST(Decode, LeavesPartialTailUnconsumed) {
  Bytes wire;
  ASSERT_TRUE(encode_packet(Transport::kIntermediate, words(4, 9), false, wire).has_value());
  const std::size_t first = wire.size();
  ASSERT_TRUE(encode_packet(Transport::kIntermediate, words(4, 8), false, wire).has_value());
  std::vector<Got> got;
  const Result<std::size_t> used = decode(Transport::kIntermediate, Direction::kToServer,
                                          ByteSpan(wire).first(wire.size() - 1), got);
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(*used, first);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, words(4, 9));
}

TEST(Decode, NeedsFullAbridgedLongHeader) {
  std::vector<Got> got;
  const Bytes partial = hex("7f8000");
  const Result<std::size_t> used = decode(Transport::kAbridged, Direction::kToServer, partial, got);
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(*used, 0u);
  EXPECT_TRUE(got.empty());
}

TEST(Decode, RejectsOverlongAbridgedLength) {
  std::vector<Got> got;
  const Result<std::size_t> r =
      decode(Transport::kAbridged, Direction::kToServer, hex("7f7e0000"), got);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kBadInput);
}

TEST(Decode, RejectsZeroLengthPackets) {
  std::vector<Got> got;
  EXPECT_EQ(decode(Transport::kAbridged, Direction::kToServer, hex("00"), got).error().code,
            Errc::kBadInput);
  EXPECT_EQ(
      decode(Transport::kIntermediate, Direction::kToServer, hex("00000000"), got).error().code,
      Errc::kBadInput);
  EXPECT_EQ(
      decode(Transport::kPadded, Direction::kToServer, hex("03000000aabbcc"), got).error().code,
      Errc::kBadInput);
}

TEST(Decode, RejectsUnalignedIntermediateButNotPadded) {
  std::vector<Got> got;
  EXPECT_EQ(
      decode(Transport::kIntermediate, Direction::kToServer, hex("05000000"), got).error().code,
      Errc::kBadInput);
  const Result<std::size_t> padded =
      decode(Transport::kPadded, Direction::kToServer, hex("0600000011223344aabb"), got);
  ASSERT_TRUE(padded.has_value());
  EXPECT_EQ(*padded, 10u);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, hex("11223344"));  // len & ~3
}

TEST(Decode, RejectsOversizedLengthBeforeDataArrives) {
  std::vector<Got> got;
  EXPECT_EQ(
      decode(Transport::kIntermediate, Direction::kToServer, hex("04000001"), got).error().code,
      Errc::kTooLarge);
  EXPECT_EQ(decode(Transport::kAbridged, Direction::kToServer, hex("7f010040"), got).error().code,
            Errc::kTooLarge);
}

TEST(Decode, ReadsQuickAckRequestBitTowardServer) {
  std::vector<Got> got;
  ASSERT_TRUE(
      decode(Transport::kAbridged, Direction::kToServer, hex("8111223344"), got).has_value());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].qa_requested);
  EXPECT_EQ(got[0].payload, hex("11223344"));
}

TEST(Decode, ReadsAbridgedQuickAckTowardClientBigEndian) {
  std::vector<Got> got;
  ASSERT_TRUE(decode(Transport::kAbridged, Direction::kToClient, hex("81020304"), got).has_value());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].kind, Frame::Kind::kQuickAck);
  EXPECT_EQ(got[0].quick_ack, 0x81020304u);
}

// Property: random sequences of frames survive encode -> chunked decode for
// every transport and direction, including quick acks and errors to the client.
TEST(Framing, RoundTripsRandomStreamsInRandomChunks) {
  SeededRandom rnd(23);
  for (Transport t : {Transport::kAbridged, Transport::kIntermediate, Transport::kPadded}) {
    for (Direction d : {Direction::kToServer, Direction::kToClient}) {
      for (int round = 0; round < 30; ++round) {
        Bytes wire;
        std::vector<Got> want;
        const int frames = static_cast<int>(rnd.uniform(1, 20));
        for (int i = 0; i < frames; ++i) {
          const std::uint32_t pick = rnd.uniform(0, 9);
          if (d == Direction::kToClient && pick == 0) {
            const std::uint32_t token = rnd.uniform(0, 0xffffffffu) | 0x80000000u;
            encode_quick_ack(t, token, wire);
            want.push_back({Frame::Kind::kQuickAck, {}, false, token, 0});
            continue;
          }
          if (d == Direction::kToClient && pick == 1) {
            encode_transport_error(t, -444, wire);
            want.push_back({Frame::Kind::kTransportError, hex("44feffff"), false, 0, -444});
            continue;
          }
          // Sizes cover the abridged long form; 4-byte packets are errors to the client.
          const std::size_t n =
              4 * (rnd.uniform(0, 3) == 0 ? rnd.uniform(0x7d, 0x200) : rnd.uniform(2, 40));
          const Bytes payload = random_bytes(rnd, n);
          const bool qa = d == Direction::kToServer && rnd.uniform(0, 1) == 1;
          ASSERT_TRUE(encode_packet(t, payload, qa, wire, &rnd, d).has_value());
          want.push_back({Frame::Kind::kPacket, payload, qa, 0, 0});
        }
        std::vector<Got> got = decode_in_chunks(t, d, wire, rnd);
        ASSERT_EQ(got.size(), want.size());
        for (std::size_t i = 0; i < got.size(); ++i) {
          if (t == Transport::kPadded && d == Direction::kToServer &&
              got[i].kind == Frame::Kind::kPacket) {
            // Up to 12 padding bytes survive len & ~3; the packet is a prefix.
            ASSERT_GE(got[i].payload.size(), want[i].payload.size());
            ASSERT_LE(got[i].payload.size(), want[i].payload.size() + 12);
            got[i].payload.resize(want[i].payload.size());
          }
          EXPECT_EQ(got[i], want[i]) << "frame " << i;
        }
      }
    }
  }
}

TEST(Decode, FuzzedGarbageNeverReadsOutOfBounds) {
  SeededRandom rnd(24);
  for (int i = 0; i < 3000; ++i) {
    const Bytes junk = random_bytes(rnd, rnd.uniform(0, 64));
    for (Transport t : {Transport::kAbridged, Transport::kIntermediate, Transport::kPadded}) {
      for (Direction d : {Direction::kToServer, Direction::kToClient}) {
        std::size_t seen = 0;
        const Result<std::size_t> r =
            decode_frames(t, d, junk, [&](const Frame& f) { seen += f.payload.size(); });
        if (r) {
          EXPECT_LE(*r, junk.size());
        }
      }
    }
  }
}

}  // namespace
}  // namespace mtw::proto
