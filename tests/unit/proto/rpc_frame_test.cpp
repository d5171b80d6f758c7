#include "proto/rpc_frame.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace mtw::proto {
namespace {

using testing::hex;
using testing::random_bytes;

struct Got {
  std::int32_t seq;
  Bytes payload;
  friend bool operator==(const Got&, const Got&) = default;
};

Result<std::size_t> decode(RpcFrameDecoder& d, ByteSpan in, std::vector<Got>& out) {
  return d.decode(in, [&](std::int32_t seq, ByteSpan p) {
    out.push_back({seq, Bytes(p.begin(), p.end())});
  });
}

Bytes encode_one(std::int32_t seq, ByteSpan payload) {
  RpcFrameEncoder enc(seq);
  Bytes out;
  EXPECT_TRUE(enc.encode(payload, out).has_value());
  return out;
}

TEST(Crc32, MatchesTheStandardCheckValue) {
  EXPECT_EQ(crc32(as_bytes("123456789")), 0xcbf43926u);
  EXPECT_EQ(crc32({}), 0u);
}

// ERL src/mtp_full.erl encode_nopadding_test (protocol.md §9).
TEST(RpcFrameEncoder, SixteenByteFrameNeedsNoPadding) {
  EXPECT_EQ(to_hex(encode_one(0, hex("01010101"))),
            "100000000000000001010101"
            "1627afa0");
}

// ERL src/mtp_full.erl encode_padding_test (protocol.md §9).
TEST(RpcFrameEncoder, PadsWithLengthFourWordsToSixteen) {
  EXPECT_EQ(to_hex(encode_one(0, hex("0101010101010101"))),
            "14000000000000000101010101010101f6c42e95"
            "040000000400000004000000");
}

// ERL src/mtp_full.erl encode_padding_seq_test: the sequence number is part of the CRC.
TEST(RpcFrameEncoder, AdvancesTheSequenceNumberPerFrame) {
  RpcFrameEncoder enc(0);
  Bytes out;
  ASSERT_TRUE(enc.encode(Bytes(8, std::byte{9}), out).has_value());
  ASSERT_TRUE(enc.encode(Bytes(8, std::byte{8}), out).has_value());
  EXPECT_EQ(to_hex(out),
            "14000000000000000909090909090909e523a2a4040000000400000004000000"
            "14000000010000000808080808080808309284740400000004000000"
            "04000000");
  EXPECT_EQ(enc.next_seq(), 2);
}

TEST(RpcFrameEncoder, StartsAtMinusTwoForTheHandshake) {
  RpcFrameEncoder enc;
  Bytes out;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(enc.encode(hex("00000000"), out).has_value());
  EXPECT_EQ(to_hex(ByteSpan(out).subspan(4, 4)), "feffffff");
  EXPECT_EQ(to_hex(ByteSpan(out).subspan(20, 4)), "ffffffff");
  EXPECT_EQ(to_hex(ByteSpan(out).subspan(36, 4)), "00000000");
}

TEST(RpcFrameEncoder, RejectsUnalignedPayloadWithoutWriting) {
  RpcFrameEncoder enc(0);
  Bytes out;
  const Result<void> r = enc.encode(hex("010203"), out);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kBadInput);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(enc.next_seq(), 0);
}

TEST(RpcFrameEncoder, RejectsPayloadOverTheLimit) {
  RpcFrameEncoder enc(0);
  Bytes out;
  EXPECT_TRUE(enc.encode(Bytes(52), out, 64).has_value());
  const Result<void> r = enc.encode(Bytes(56), out, 64);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kTooLarge);
}

TEST(RpcFrameDecoder, RoundTripsFramesFedInRandomChunks) {
  SeededRandom rnd(7);
  RpcFrameEncoder enc;
  std::vector<Got> want;
  Bytes wire;
  for (int i = 0; i < 200; ++i) {
    const Bytes payload = random_bytes(rnd, 4 * rnd.uniform(0, 300));
    want.push_back({enc.next_seq(), payload});
    ASSERT_TRUE(enc.encode(payload, wire).has_value());
  }
  RpcFrameDecoder dec;
  std::vector<Got> got;
  Bytes pending;
  for (std::size_t pos = 0; pos < wire.size();) {
    const std::size_t n = std::min<std::size_t>(rnd.uniform(1, 700), wire.size() - pos);
    pending.insert(pending.end(), wire.begin() + static_cast<std::ptrdiff_t>(pos),
                   wire.begin() + static_cast<std::ptrdiff_t>(pos + n));
    pos += n;
    const Result<std::size_t> used = decode(dec, pending, got);
    ASSERT_TRUE(used.has_value()) << used.error().to_string();
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(*used));
  }
  EXPECT_TRUE(pending.empty());
  EXPECT_EQ(got, want);
  EXPECT_EQ(dec.next_seq(), 198);
}

TEST(RpcFrameDecoder, LeavesAPartialFrameForTheNextRead) {
  const Bytes wire = encode_one(kRpcFirstSeq, hex("0101010101010101"));
  RpcFrameDecoder dec;
  std::vector<Got> got;
  const Result<std::size_t> used = decode(dec, ByteSpan(wire).first(19), got);
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(*used, 0u);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(dec.next_seq(), kRpcFirstSeq);
}

TEST(RpcFrameDecoder, SkipsPaddingWordsBetweenFrames) {
  Bytes wire =
      hex("04000000"
          "04000000");
  const Bytes frame = encode_one(0, hex("aabbccdd"));
  wire.insert(wire.end(), frame.begin(), frame.end());
  RpcFrameDecoder dec(0);
  std::vector<Got> got;
  const Result<std::size_t> used = decode(dec, wire, got);
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(*used, wire.size());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(to_hex(got[0].payload), "aabbccdd");
}

TEST(RpcFrameDecoder, RejectsABadCrcAndStaysFailed) {
  Bytes wire = encode_one(0, hex("0101010101010101"));
  wire[10] ^= std::byte{1};
  RpcFrameDecoder dec(0);
  std::vector<Got> got;
  Result<std::size_t> r = decode(dec, wire, got);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kBadInput);
  EXPECT_EQ(dec.fault(), RpcFrameFault::kBadCrc);
  EXPECT_TRUE(got.empty());
  // A good frame afterwards does not revive the stream.
  r = decode(dec, encode_one(0, hex("01010101")), got);
  EXPECT_FALSE(r.has_value());
  EXPECT_TRUE(got.empty());
}

TEST(RpcFrameDecoder, RejectsAnUnexpectedSequenceNumberFromItsHeader) {
  const Bytes wire = encode_one(0, hex("01010101"));  // a seq-0 frame before the handshake
  RpcFrameDecoder dec;                                // expects -2
  std::vector<Got> got;
  const Result<std::size_t> r = decode(dec, ByteSpan(wire).first(8), got);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(dec.fault(), RpcFrameFault::kBadSeq);
}

TEST(RpcFrameDecoder, RejectsARepeatedSequenceNumber) {
  Bytes wire = encode_one(0, hex("01010101"));
  const Bytes again = encode_one(0, hex("02020202"));
  wire.insert(wire.end(), again.begin(), again.end());
  RpcFrameDecoder dec(0);
  std::vector<Got> got;
  const Result<std::size_t> r = decode(dec, wire, got);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(dec.fault(), RpcFrameFault::kBadSeq);
  EXPECT_EQ(got.size(), 1u);  // the good frame before it was delivered
}

TEST(RpcFrameDecoder, RejectsAnOversizedLengthBeforeTheBodyArrives) {
  RpcFrameDecoder dec(0, 1024);
  std::vector<Got> got;
  const Result<std::size_t> r = decode(dec, hex("04040000"), got);  // len 1028
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kTooLarge);
  EXPECT_EQ(dec.fault(), RpcFrameFault::kTooLarge);
}

TEST(RpcFrameDecoder, AcceptsAFrameExactlyAtTheLimit) {
  const Bytes wire = encode_one(0, Bytes(1024 - kRpcFrameOverhead));
  RpcFrameDecoder dec(0, 1024);
  std::vector<Got> got;
  ASSERT_TRUE(decode(dec, wire, got).has_value());
  EXPECT_EQ(got.size(), 1u);
}

TEST(RpcFrameDecoder, RejectsImpossibleLengths) {
  for (const char* len : {"00000000", "08000000", "0d000000", "ffffffff"}) {
    RpcFrameDecoder dec(0, 0xffffffffu);
    std::vector<Got> got;
    const Result<std::size_t> r = decode(dec, hex(len), got);
    ASSERT_FALSE(r.has_value()) << len;
    EXPECT_EQ(dec.fault(), RpcFrameFault::kBadLength) << len;
  }
}

TEST(RpcFrameDecoder, NamesEveryFault) {
  EXPECT_EQ(rpc_frame_fault_name(RpcFrameFault::kBadCrc), "bad_crc");
  EXPECT_EQ(rpc_frame_fault_name(RpcFrameFault::kBadSeq), "bad_seq");
  EXPECT_EQ(rpc_frame_fault_name(RpcFrameFault::kTooLarge), "too_large");
  EXPECT_EQ(rpc_frame_fault_name(RpcFrameFault::kBadLength), "bad_length");
}

}  // namespace
}  // namespace mtw::proto
