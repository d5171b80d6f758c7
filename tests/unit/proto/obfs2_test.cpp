#include "proto/obfs2.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <deque>

#include "test_util.h"

namespace mtw::proto {
namespace {

using testing::random_bytes;
using Init = std::array<std::byte, kInitSize>;

SecretKey make_key(std::uint64_t seed) {
  SeededRandom rnd(seed);
  SecretKey k{};
  rnd.fill(k);
  return k;
}

AesCtr make(const CipherParams& p) {
  Result<AesCtr> r = AesCtr::create(p);
  EXPECT_TRUE(r.has_value());
  return r ? std::move(*r) : AesCtr{};
}

// What a Telegram DC does with our init: key = H[8..40), iv = H[40..56), no secret.
struct DcView {
  Init plain{};
  AesCtr from_proxy;  // decrypts proxy->DC, positioned after the init
  AesCtr to_proxy;    // encrypts DC->proxy
};
DcView dc_accepts(const Init& wire) {
  DcView v;
  CipherParams fwd, back;
  std::copy(wire.begin() + 8, wire.begin() + 40, fwd.key.begin());
  std::copy(wire.begin() + 40, wire.begin() + 56, fwd.iv.begin());
  std::array<std::byte, 48> r{};
  std::reverse_copy(wire.begin() + 8, wire.begin() + 56, r.begin());
  std::copy(r.begin(), r.begin() + 32, back.key.begin());
  std::copy(r.begin() + 32, r.end(), back.iv.begin());
  v.from_proxy = make(fwd);
  v.to_proxy = make(back);
  v.plain = wire;
  v.from_proxy.apply(v.plain);
  return v;
}

std::int16_t dc_at_60(const Init& h) {
  return static_cast<std::int16_t>(std::to_integer<std::uint16_t>(h[60]) |
                                   (std::to_integer<std::uint16_t>(h[61]) << 8));
}

const ProtoTag kTags[] = {ProtoTag::kAbridged, ProtoTag::kIntermediate, ProtoTag::kPadded};
const std::int16_t kDcs[] = {1, 2, 5, -2, -5, 203, 10002, -10004, 0};

// Property: parse(build_client_init(...)) recovers tag, DC and mirrored keys.
TEST(Obfs2ClientInit, ParseRecoversWhatTheClientBuilt) {
  SeededRandom rnd(11);
  for (int i = 0; i < 300; ++i) {
    const SecretKey key = make_key(static_cast<std::uint64_t>(i));
    const ProtoTag tag = kTags[i % 3];
    const std::int16_t dc = kDcs[i % std::size(kDcs)];
    const ClientSideInit client = build_client_init(key, tag, dc, rnd);
    const Result<ClientInit> parsed = parse_client_init(client.wire, key);
    ASSERT_TRUE(parsed.has_value()) << i;
    EXPECT_EQ(parsed->tag, tag);
    EXPECT_EQ(parsed->dc, dc);
    EXPECT_EQ(parsed->decrypt, client.encrypt);
    EXPECT_EQ(parsed->encrypt, client.decrypt);
  }
}

TEST(Obfs2ClientInit, RejectsWrongSecretAsBadHandshake) {
  SeededRandom rnd(12);
  for (int i = 0; i < 50; ++i) {
    const ClientSideInit client = build_client_init(make_key(1), ProtoTag::kPadded, 2, rnd);
    const Result<ClientInit> parsed = parse_client_init(client.wire, make_key(2));
    ASSERT_FALSE(parsed.has_value());
    EXPECT_EQ(parsed.error().code, Errc::kBadHandshake);
  }
}

TEST(Obfs2ClientInit, RejectsCorruptedTag) {
  SeededRandom rnd(13);
  ClientSideInit client = build_client_init(make_key(1), ProtoTag::kAbridged, 2, rnd);
  client.wire[57] ^= std::byte{0x01};
  EXPECT_FALSE(parse_client_init(client.wire, make_key(1)).has_value());
}

// Reference for peek_client_init: decrypt all 64 bytes the long way (EVP
// SHA-256, a full CTR stream from the IV) and read bytes 56..64.
InitTail full_decrypt_tail(const Init& wire, const SecretKey& key) {
  std::array<std::byte, 48> seed_key{};
  std::copy(wire.begin() + 8, wire.begin() + 40, seed_key.begin());
  std::copy(key.begin(), key.end(), seed_key.begin() + 32);
  CipherParams p;
  unsigned int n = 0;
  EXPECT_EQ(EVP_Digest(seed_key.data(), seed_key.size(), uc(MutableByteSpan(p.key)), &n,
                       EVP_sha256(), nullptr),
            1);
  std::copy(wire.begin() + 40, wire.begin() + 56, p.iv.begin());
  Init plain = wire;
  make(p).apply(plain);
  return InitTail{load_le32(plain.data() + 56), dc_at_60(plain)};
}

// Property: the one-block tag check equals full decryption and agrees with
// parse_client_init, on valid inits and on random bytes (1000 cases, fixed
// seed). Some IVs end in ff bytes so that IV + 3 carries, up to a wrap of the
// whole 128-bit counter.
TEST(Obfs2PeekInit, AgreesWithFullDecryptionAndParseOnRandomInits) {
  SeededRandom rnd(16);
  int valid = 0;
  for (int i = 0; i < 1000; ++i) {
    SecretKey key{};
    rnd.fill(key);
    Init wire{};
    if (i % 2 == 0) {
      wire = build_client_init(key, kTags[i % 3], kDcs[i % std::size(kDcs)], rnd).wire;
    } else {
      rnd.fill(wire);
      const std::size_t ff_tail = (i % 6 == 1) ? 16 : (i % 6 == 3) ? 1 + (i % 15) : 0;
      std::fill(wire.begin() + 56 - ff_tail, wire.begin() + 56, std::byte{0xff});
    }
    const InitTail peek = peek_client_init(wire, key);
    const InitTail ref = full_decrypt_tail(wire, key);
    ASSERT_EQ(peek.tag, ref.tag) << i;
    ASSERT_EQ(peek.dc, ref.dc) << i;
    const Result<ClientInit> parsed = parse_client_init(wire, key);
    ASSERT_EQ(parsed.has_value(), is_known_tag(peek.tag)) << i;
    if (parsed) {
      ++valid;
      EXPECT_EQ(static_cast<std::uint32_t>(parsed->tag), peek.tag) << i;
      EXPECT_EQ(parsed->dc, peek.dc) << i;
    }
  }
  EXPECT_EQ(valid, 500);  // every built init, no random one (odds ~3 in 2^32 each)
}

TEST(Obfs2PeekInit, OnlyTheThreeProtocolTagsAreKnown) {
  for (ProtoTag t : kTags) EXPECT_TRUE(is_known_tag(static_cast<std::uint32_t>(t)));
  for (std::uint32_t v : {0u, 0xefefefeeu, 0xeeeeeeefu, 0xddddddd0u, 0xffffffffu, 0x16030102u}) {
    EXPECT_FALSE(is_known_tag(v)) << v;
  }
}

TEST(Obfs2ClientInit, SendsFirst56BytesInClearAndNeverAForbiddenPrefix) {
  SeededRandom rnd(14);
  for (int i = 0; i < 2000; ++i) {
    const ClientSideInit client = build_client_init(make_key(3), ProtoTag::kPadded, 2, rnd);
    ASSERT_FALSE(forbidden_init_prefix(client.wire)) << i;
  }
}

TEST(Obfs2Streams, ClientAndProxyStreamsInterlock) {
  SeededRandom rnd(15);
  const SecretKey key = make_key(4);
  const ClientSideInit client = build_client_init(key, ProtoTag::kIntermediate, -3, rnd);
  Result<Streams> cs = make_client_side_streams(client);
  ASSERT_TRUE(cs.has_value());
  const Result<ClientInit> parsed = parse_client_init(client.wire, key);
  ASSERT_TRUE(parsed.has_value());
  Result<Streams> ps = make_client_streams(*parsed);
  ASSERT_TRUE(ps.has_value());

  const Bytes up = random_bytes(rnd, 1000);
  Bytes wire = up;
  cs->encrypt.apply(wire);
  ps->decrypt.apply(MutableByteSpan(wire).first(333));  // chunking must not matter
  ps->decrypt.apply(MutableByteSpan(wire).subspan(333));
  EXPECT_EQ(wire, up);

  const Bytes down = random_bytes(rnd, 777);
  wire = down;
  ps->encrypt.apply(wire);
  cs->decrypt.apply(wire);
  EXPECT_EQ(wire, down);
}

// Returns scripted 64-byte blocks first, then falls back to a seeded stream.
class ScriptedRandom final : public RandomSource {
 public:
  void fill(MutableByteSpan out) override {
    if (!script_.empty() && out.size() == kInitSize) {
      std::copy(script_.front().begin(), script_.front().end(), out.begin());
      script_.pop_front();
      ++scripted_used_;
      return;
    }
    fallback_.fill(out);
  }
  std::deque<Init> script_;
  int scripted_used_ = 0;

 private:
  SeededRandom fallback_{99};
};

Init with_prefix(std::uint32_t first, std::uint32_t second) {
  Init h{};
  h.fill(std::byte{0x55});
  store_le32(h.data(), first);
  store_le32(h.data() + 4, second);
  return h;
}

TEST(ForbiddenInitPrefix, FlagsEveryReservedPattern) {
  for (std::uint32_t first : {0x44414548u, 0x54534f50u, 0x20544547u, 0x4954504fu, 0x02010316u,
                              0xddddddddu, 0xeeeeeeeeu, 0x000000efu}) {
    EXPECT_TRUE(forbidden_init_prefix(with_prefix(first, 1))) << std::hex << first;
  }
  EXPECT_TRUE(forbidden_init_prefix(with_prefix(0x01020304u, 0)));
  EXPECT_FALSE(forbidden_init_prefix(with_prefix(0x01020304u, 1)));
  EXPECT_FALSE(forbidden_init_prefix(with_prefix(0xefefef01u, 1)));  // only byte 0 matters for ef
}

TEST(Obfs2DcInit, RerollsForbiddenPrefixes) {
  ScriptedRandom rnd;
  rnd.script_ = {with_prefix(0x20544547u, 1), with_prefix(0xeeeeeeeeu, 1),
                 with_prefix(0x01020304u, 0), with_prefix(0x01020304u, 7)};
  const DcInit init = build_dc_init(ProtoTag::kPadded, 2, rnd);
  EXPECT_EQ(rnd.scripted_used_, 4);
  EXPECT_EQ(load_le32(init.wire.data()), 0x01020304u);
  EXPECT_EQ(load_le32(init.wire.data() + 4), 7u);
}

TEST(Obfs2DcInit, DcReadsTagAndIndexWithoutSecret) {
  SeededRandom rnd(16);
  for (const ProtoTag tag : kTags) {
    for (const std::int16_t dc : kDcs) {
      const DcInit init = build_dc_init(tag, dc, rnd);
      DcView dcv = dc_accepts(init.wire);
      EXPECT_EQ(load_le32(dcv.plain.data() + 56), static_cast<std::uint32_t>(tag));
      EXPECT_EQ(dc_at_60(dcv.plain), dc);
      // No secret: the key and IV are the clear bytes H[8..56) themselves.
      EXPECT_TRUE(
          std::equal(init.encrypt.key.begin(), init.encrypt.key.end(), init.wire.begin() + 8));
      EXPECT_TRUE(
          std::equal(init.encrypt.iv.begin(), init.encrypt.iv.end(), init.wire.begin() + 40));
      EXPECT_FALSE(forbidden_init_prefix(init.wire));
    }
  }
}

TEST(Obfs2DcInit, StreamsInterlockWithTheDc) {
  SeededRandom rnd(17);
  const DcInit init = build_dc_init(ProtoTag::kAbridged, 4, rnd);
  Result<Streams> ps = make_dc_streams(init);
  ASSERT_TRUE(ps.has_value());
  DcView dcv = dc_accepts(init.wire);

  const Bytes up = random_bytes(rnd, 500);
  Bytes wire = up;
  ps->encrypt.apply(wire);
  dcv.from_proxy.apply(wire);
  EXPECT_EQ(wire, up);

  const Bytes down = random_bytes(rnd, 500);
  wire = down;
  dcv.to_proxy.apply(wire);
  ps->decrypt.apply(wire);
  EXPECT_EQ(wire, down);
}

// Fast mode: what the DC encrypts toward the proxy is exactly what the client
// can decrypt with its own stream, so DC->client bytes need no re-encryption.
TEST(Obfs2DcInit, FastModeLetsDcBytesPassToClientUnchanged) {
  SeededRandom rnd(18);
  const SecretKey key = make_key(5);
  const ClientSideInit client = build_client_init(key, ProtoTag::kPadded, 2, rnd);
  const Result<ClientInit> parsed = parse_client_init(client.wire, key);
  ASSERT_TRUE(parsed.has_value());

  const DcInit init = build_dc_init(parsed->tag, parsed->dc, rnd, &parsed->encrypt);
  EXPECT_EQ(init.decrypt, parsed->encrypt);
  DcView dcv = dc_accepts(init.wire);
  EXPECT_EQ(load_le32(dcv.plain.data() + 56), static_cast<std::uint32_t>(ProtoTag::kPadded));
  EXPECT_EQ(dc_at_60(dcv.plain), 2);

  Result<Streams> cs = make_client_side_streams(client);
  ASSERT_TRUE(cs.has_value());
  const Bytes answer = random_bytes(rnd, 4096);
  Bytes wire = answer;
  dcv.to_proxy.apply(wire);  // DC -> proxy, forwarded verbatim
  cs->decrypt.apply(wire);   // client decrypts with its own stream
  EXPECT_EQ(wire, answer);
}

TEST(Obfs2DcInit, FreshInitsDiffer) {
  SeededRandom rnd(19);
  const DcInit a = build_dc_init(ProtoTag::kPadded, 2, rnd);
  const DcInit b = build_dc_init(ProtoTag::kPadded, 2, rnd);
  EXPECT_NE(a.wire, b.wire);
  EXPECT_NE(a.encrypt, b.encrypt);
}

}  // namespace
}  // namespace mtw::proto
