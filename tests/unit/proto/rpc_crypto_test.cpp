#include "proto/rpc_crypto.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "test_util.h"

namespace mtw::proto {
namespace {

using testing::hex;
using testing::hex_array;
using testing::random_bytes;
using testing::vector_proxy_secret;

RpcKdfInput erl_kdf_input() {
  RpcKdfInput in;
  in.server_nonce = hex_array<16>("f728d238410c65aad89b0efdfaeedbe2");
  in.client_nonce = hex_array<16>("1831356fc60aebb4e6705c4e01c96a69");
  in.client_ts = 1528396015;
  in.server_ip4 = hex_array<4>("959aa226");  // 149.154.162.38
  in.server_port = 80;
  in.client_ip4 = hex_array<4>("50d31d22");  // 80.211.29.34
  in.client_port = 54208;
  in.proxy_secret = vector_proxy_secret();
  return in;
}

// The same nonces and secret over IPv6: server 2001:b28:f23d:f001::d:8888,
// client 2001:db8::34:54208.
RpcKdfInput v6_kdf_input() {
  RpcKdfInput in = erl_kdf_input();
  in.ipv6 = true;
  in.server_ip6 = hex_array<16>("20010b28f23df001000000000000000d");
  in.client_ip6 = hex_array<16>("20010db8000000000000000000000034");
  in.server_port = 8888;
  return in;
}

// ERL src/mtp_down_conn.erl middle_key_test (protocol.md §9).
TEST(RpcKdf, ClientKeyMatchesTheErlangVector) {
  const CipherParams p = derive_rpc_key(erl_kdf_input(), RpcKeyPurpose::kClient);
  EXPECT_EQ(to_hex(p.key), "a59e7f3129e8bb45261da3e2b7921c43e1e086bfcf98ffa69842a9c4368732bc");
  EXPECT_EQ(to_hex(p.iv), "216e7dddb779a07482b49cf9346f25b2");
}

// The expected values of the next tests come from an independent Python
// script (hashlib) over the string layout of protocol.md §8; it reproduces
// the Erlang CLIENT vector above.
TEST(RpcKdf, ServerKeyDiffersOnlyByThePurposeString) {
  const RpcSessionKeys k = derive_rpc_session_keys(erl_kdf_input());
  EXPECT_EQ(to_hex(k.encrypt.key),
            "a59e7f3129e8bb45261da3e2b7921c43e1e086bfcf98ffa69842a9c4368732bc");
  EXPECT_EQ(to_hex(k.decrypt.key),
            "5fc7a56a00cb18fb0c133453441c0d8cef56ffcbbf986fb4a7d4201fce64fa51");
  EXPECT_EQ(to_hex(k.decrypt.iv), "4b295add3b3f5cf280e08876e8d29fbc");
}

TEST(RpcKdf, Ipv6AppendsBothAddressesAndZeroesTheIpv4Fields) {
  const RpcSessionKeys k = derive_rpc_session_keys(v6_kdf_input());
  EXPECT_EQ(to_hex(k.encrypt.key),
            "cecefe1959d910b8d4bcbdf791d385ae78bdc35481647138861cf4288af0188d");
  EXPECT_EQ(to_hex(k.encrypt.iv), "c6c4c4af769f3a2046ef7f6935746e62");
  EXPECT_EQ(to_hex(k.decrypt.key),
            "a5f4bdee8f79970720a09b2c5b2afd0598d91e064407d117964c400eb0c46641");
  EXPECT_EQ(to_hex(k.decrypt.iv), "0a9a8c018839303d5f2d1e9b31aacff9");
}

TEST(RpcKdf, Ipv6IgnoresLeftoverIpv4Fields) {
  RpcKdfInput a = v6_kdf_input();
  RpcKdfInput b = a;
  b.server_ip4 = hex_array<4>("01020304");
  b.client_ip4 = hex_array<4>("05060708");
  EXPECT_EQ(derive_rpc_key(a, RpcKeyPurpose::kClient), derive_rpc_key(b, RpcKeyPurpose::kClient));
}

TEST(RpcKdf, EveryInputChangesTheKey) {
  const CipherParams base = derive_rpc_key(erl_kdf_input(), RpcKeyPurpose::kClient);
  std::vector<RpcKdfInput> variants(6, erl_kdf_input());
  variants[0].client_ts += 1;
  variants[1].client_port += 1;
  variants[2].server_port += 1;
  variants[3].client_ip4[3] ^= std::byte{1};
  variants[4].server_nonce[15] ^= std::byte{1};
  const Bytes other_secret = [] {
    Bytes s = vector_proxy_secret();
    s.back() ^= std::byte{1};
    return s;
  }();
  variants[5].proxy_secret = other_secret;
  for (const RpcKdfInput& v : variants) EXPECT_NE(derive_rpc_key(v, RpcKeyPurpose::kClient), base);
}

// NIST SP 800-38A F.2.5 CBC-AES256.Encrypt / F.2.6 Decrypt.
constexpr std::string_view kNistKey =
    "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
constexpr std::string_view kNistIv = "000102030405060708090a0b0c0d0e0f";
constexpr std::string_view kNistPlain =
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
constexpr std::string_view kNistCipher =
    "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d"
    "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b";

CipherParams params(std::string_view key, std::string_view iv) {
  return CipherParams{hex_array<32>(key), hex_array<16>(iv)};
}

TEST(AesCbc, EncryptsTheNistVector) {
  auto enc = AesCbc::create(params(kNistKey, kNistIv), AesCbc::Mode::kEncrypt);
  ASSERT_TRUE(enc.has_value());
  Bytes data = hex(kNistPlain);
  ASSERT_TRUE(enc->apply(data).has_value());
  EXPECT_EQ(to_hex(data), kNistCipher);
}

TEST(AesCbc, ChainsTheIvAcrossCalls) {
  auto dec = AesCbc::create(params(kNistKey, kNistIv), AesCbc::Mode::kDecrypt);
  ASSERT_TRUE(dec.has_value());
  Bytes data = hex(kNistCipher);
  ASSERT_TRUE(dec->apply(MutableByteSpan(data).first(16)).has_value());
  ASSERT_TRUE(dec->apply(MutableByteSpan(data).subspan(16, 32)).has_value());
  ASSERT_TRUE(dec->apply(MutableByteSpan(data).subspan(48)).has_value());
  EXPECT_EQ(to_hex(data), kNistPlain);
}

// ERL src/mtp_aes_cbc.erl decrypt_test: the middle proxy's RPC_HANDSHAKE
// frame, decrypted in two calls.
TEST(AesCbc, DecryptsTheErlangHandshakeBlocks) {
  auto dec =
      AesCbc::create(params("15d3bf7f8fdeb898e8d519adf3a3f3e08583c70dce9c928d43ac5572becbb0d7",
                            "099caff725a1db9b34735d4c7ac39ec2"),
                     AesCbc::Mode::kDecrypt);
  ASSERT_TRUE(dec.has_value());
  Bytes a = hex("24aa935f351b2cfffc6946085a284de2");
  Bytes b = hex("89bb50ee6e8e3482778cd28a0d48a9903fa7ac13a10de7a9ed22cbf00887431d");
  ASSERT_TRUE(dec->apply(a).has_value());
  ASSERT_TRUE(dec->apply(b).has_value());
  EXPECT_EQ(to_hex(a), "2c000000fffffffff5ee827600000000");
  EXPECT_EQ(to_hex(b), "8699420a5f098631dd85155b495049505052504454494d4585fa4c5404000000");
}

TEST(AesCbc, RejectsAPartialBlockWithoutTouchingTheData) {
  auto enc = AesCbc::create(params(kNistKey, kNistIv), AesCbc::Mode::kEncrypt);
  ASSERT_TRUE(enc.has_value());
  Bytes data = hex(kNistPlain);
  data.pop_back();
  const Bytes before = data;
  const Result<void> r = enc->apply(data);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kBadInput);
  EXPECT_EQ(data, before);
}

TEST(AesCbc, DecryptInvertsEncryptOverManyCalls) {
  SeededRandom rnd(11);
  const CipherParams p{hex_array<32>(to_hex(random_bytes(rnd, 32))),
                       hex_array<16>(to_hex(random_bytes(rnd, 16)))};
  auto enc = AesCbc::create(p, AesCbc::Mode::kEncrypt);
  auto dec = AesCbc::create(p, AesCbc::Mode::kDecrypt);
  ASSERT_TRUE(enc.has_value() && dec.has_value());
  const Bytes plain = random_bytes(rnd, 16 * 64);
  Bytes data = plain;
  ASSERT_TRUE(enc->apply(data).has_value());
  EXPECT_NE(data, plain);
  for (std::size_t pos = 0; pos < data.size();) {
    const std::size_t n = std::min<std::size_t>(16 * rnd.uniform(1, 5), data.size() - pos);
    ASSERT_TRUE(dec->apply(MutableByteSpan(data).subspan(pos, n)).has_value());
    pos += n;
  }
  EXPECT_EQ(data, plain);
}

TEST(AesCbc, MovedFromIsEmpty) {
  auto enc = AesCbc::create(params(kNistKey, kNistIv), AesCbc::Mode::kEncrypt);
  ASSERT_TRUE(enc.has_value());
  AesCbc moved = std::move(*enc);
  EXPECT_TRUE(moved.valid());
  EXPECT_FALSE(enc->valid());  // NOLINT(bugprone-use-after-move): checking the moved-from state
}

}  // namespace
}  // namespace mtw::proto
