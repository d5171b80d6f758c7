// SHA-256 and HMAC-SHA256 (plain and with precomputed pads): published
// known-answer vectors, and agreement with OpenSSL's own HMAC() (EVP_MAC, an
// independent code path) across key and message lengths and block edges.
#include "proto/tls_crypto.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "proto/fake_tls.h"
#include "test_util.h"

namespace mtw::proto {
namespace {

using testing::hex;
using testing::random_bytes;

Sha256Digest reference_hmac(ByteSpan key, ByteSpan msg) {
  // OpenSSL's HMAC() fails on a null key pointer even with length 0.
  static const unsigned char kNoKey = 0;
  const void* key_ptr = key.empty() ? static_cast<const void*>(&kNoKey) : key.data();
  Sha256Digest out{};
  unsigned int n = 0;
  const unsigned char* r = HMAC(EVP_sha256(), key_ptr, static_cast<int>(key.size()), uc(msg),
                                msg.size(), reinterpret_cast<unsigned char*>(out.data()), &n);
  EXPECT_NE(r, nullptr);
  EXPECT_EQ(n, out.size());
  return out;
}

TEST(TlsCrypto, Sha256MatchesFips180Vectors) {
  EXPECT_EQ(to_hex(sha256({as_bytes("abc")})),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // Two blocks after padding, fed in uneven parts.
  EXPECT_EQ(to_hex(sha256({as_bytes("abcdbcdecdefdefgefghfghighij"), as_bytes(""),
                           as_bytes("hijkijkljklmklmnlmnomnopnopq")})),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(to_hex(sha256({})), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(TlsCrypto, PrecomputedHmacKeyMatchesRfc4231) {
  // Case 1: key 0x0b x 20, "Hi There".
  const HmacSha256Key k1(hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"));
  EXPECT_EQ(to_hex(k1.mac({as_bytes("Hi There")})),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // Case 2: "Jefe", split across parts.
  const HmacSha256Key k2(as_bytes("Jefe"));
  EXPECT_EQ(to_hex(k2.mac({as_bytes("what do ya want "), as_bytes("for nothing?")})),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Case 4: key 01..19, data 0xcd x 50.
  const HmacSha256Key k4(hex("0102030405060708090a0b0c0d0e0f10111213141516171819"));
  EXPECT_EQ(to_hex(k4.mac({Bytes(50, std::byte{0xcd})})),
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
}

TEST(TlsCrypto, PrecomputedHmacKeyAgreesWithOpensslHmacAcrossLengths) {
  SeededRandom rnd(4231);
  for (std::size_t key_len : {0, 1, 16, 32, 55, 63, 64}) {
    const Bytes key = random_bytes(rnd, key_len);
    const HmacSha256Key pre(key);
    for (std::size_t msg_len = 0; msg_len <= 600; msg_len += (msg_len < 140 ? 1 : 59)) {
      const Bytes msg = random_bytes(rnd, msg_len);
      const std::size_t cut = msg_len / 3;
      const auto expect = reference_hmac(key, msg);
      ASSERT_EQ(pre.mac({msg}), expect) << key_len << " " << msg_len;
      ASSERT_EQ(pre.mac({ByteSpan(msg).first(cut), ByteSpan(msg).subspan(cut)}), expect)
          << key_len << " " << msg_len;
      ASSERT_EQ(hmac_sha256(key, {msg}), expect) << key_len << " " << msg_len;
    }
  }
}

TEST(TlsCrypto, PrecomputedKeyIsReusableAndDefaultIsTheEmptyKey) {
  const HmacSha256Key key(as_bytes("Jefe"));
  const auto first = key.mac({as_bytes("abc")});
  EXPECT_EQ(key.mac({as_bytes("xyz")}), reference_hmac(as_bytes("Jefe"), as_bytes("xyz")));
  EXPECT_EQ(key.mac({as_bytes("abc")}), first);  // mac() leaves no state behind
  EXPECT_EQ(HmacSha256Key().mac({as_bytes("abc")}), reference_hmac({}, as_bytes("abc")));
}

TEST(ClientHelloTimestamp, PrecomputedKeyGivesTheSameAnswerAsTheRawKey) {
  SeededRandom rnd(77);
  for (int i = 0; i < 20; ++i) {
    Secret s;
    rnd.fill(s.key);
    s.kind = SecretKind::kFakeTls;
    s.domain = "www.example.com";
    const auto hello = parse_client_hello(build_client_hello(s, 1'700'000'000 + i, rnd));
    ASSERT_TRUE(hello.has_value());
    const auto ts = client_hello_timestamp(*hello, HmacSha256Key(s.key));
    ASSERT_TRUE(ts.has_value()) << i;
    EXPECT_EQ(*ts, static_cast<std::uint32_t>(1'700'000'000 + i));
    EXPECT_EQ(client_hello_timestamp(*hello, s.key), ts);
    SecretKey other = s.key;
    other[i % 16] ^= std::byte{0x01};
    EXPECT_FALSE(client_hello_timestamp(*hello, HmacSha256Key(other)).has_value()) << i;
  }
}

}  // namespace
}  // namespace mtw::proto
