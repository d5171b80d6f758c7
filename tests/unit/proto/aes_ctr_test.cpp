#include "proto/aes_ctr.h"

#include <gtest/gtest.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <atomic>
#include <cstdlib>

#include "test_util.h"

// Counts OpenSSL heap allocations so a test can prove apply() allocates
// nothing. Installed before main(), i.e. before OpenSSL's first allocation.
namespace {
std::atomic<long> g_openssl_allocs{0};
void* count_malloc(std::size_t n, const char*, int) {
  ++g_openssl_allocs;
  return std::malloc(n);
}
void* count_realloc(void* p, std::size_t n, const char*, int) {
  ++g_openssl_allocs;
  return std::realloc(p, n);
}
void plain_free(void* p, const char*, int) { std::free(p); }
const bool g_counting_installed =
    CRYPTO_set_mem_functions(count_malloc, count_realloc, plain_free) == 1;
}  // namespace

namespace mtw::proto {
namespace {

using testing::hex;

// NIST SP 800-38A, F.5.5 CTR-AES256.Encrypt.
constexpr std::string_view kNistKey =
    "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
constexpr std::string_view kNistCounter = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
constexpr std::string_view kNistPlain =
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
constexpr std::string_view kNistCipher =
    "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5"
    "2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6";

CipherParams params(std::string_view key_hex, std::string_view iv_hex) {
  CipherParams p;
  const Bytes k = hex(key_hex), iv = hex(iv_hex);
  std::copy(k.begin(), k.end(), p.key.begin());
  std::copy(iv.begin(), iv.end(), p.iv.begin());
  return p;
}

AesCtr make(const CipherParams& p) {
  Result<AesCtr> r = AesCtr::create(p);
  EXPECT_TRUE(r.has_value());
  return r ? std::move(*r) : AesCtr{};
}

TEST(AesCtr, MatchesNistSp80038aF55) {
  AesCtr c = make(params(kNistKey, kNistCounter));
  Bytes data = hex(kNistPlain);
  c.apply(data);
  EXPECT_EQ(to_hex(data), kNistCipher);
}

TEST(AesCtr, CounterContinuesAcrossUnevenChunks) {
  AesCtr c = make(params(kNistKey, kNistCounter));
  Bytes data = hex(kNistPlain);
  std::size_t pos = 0;
  for (std::size_t n : {1, 7, 8, 16, 3, 29}) {
    c.apply(MutableByteSpan(data).subspan(pos, n));
    pos += n;
  }
  ASSERT_EQ(pos, data.size());
  EXPECT_EQ(to_hex(data), kNistCipher);
}

TEST(AesCtr, SeparateOutputEqualsInPlace) {
  AesCtr a = make(params(kNistKey, kNistCounter));
  const Bytes in = hex(kNistPlain);
  Bytes out(in.size());
  a.apply(in, out);
  EXPECT_EQ(to_hex(out), kNistCipher);
  EXPECT_EQ(to_hex(in), kNistPlain);  // input untouched
}

TEST(AesCtr, DecryptsWhatItEncrypts) {
  AesCtr enc = make(params(kNistKey, kNistCounter));
  AesCtr dec = make(params(kNistKey, kNistCounter));
  Bytes data = hex(kNistPlain);
  enc.apply(data);
  dec.apply(data);
  EXPECT_EQ(to_hex(data), kNistPlain);
}

TEST(AesCtr, MoveKeepsStreamPosition) {
  AesCtr a = make(params(kNistKey, kNistCounter));
  Bytes data = hex(kNistPlain);
  a.apply(MutableByteSpan(data).first(20));
  AesCtr b(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  AesCtr c;
  c = std::move(b);
  c.apply(MutableByteSpan(data).subspan(20));
  EXPECT_EQ(to_hex(data), kNistCipher);
}

// The IV is one 128-bit big-endian counter (PY int.from_bytes(iv, "big")):
// incrementing 00..00ffffffffffffffff must carry into the upper half.
TEST(AesCtr, CounterCarriesAcross64BitBoundary) {
  const CipherParams p = params(kNistKey, "0000000000000000ffffffffffffffff");
  AesCtr c = make(p);
  Bytes ks(32);  // keystream = encryption of zeros
  c.apply(ks);

  const Bytes next_counter = hex("00000000000000010000000000000000");
  EVP_CIPHER_CTX* ecb = EVP_CIPHER_CTX_new();
  ASSERT_NE(ecb, nullptr);
  ASSERT_EQ(EVP_EncryptInit_ex(ecb, EVP_aes_256_ecb(), nullptr, uc(ByteSpan(p.key)), nullptr), 1);
  EVP_CIPHER_CTX_set_padding(ecb, 0);
  Bytes block(16);
  int len = 0;
  ASSERT_EQ(
      EVP_EncryptUpdate(ecb, uc(MutableByteSpan(block)), &len, uc(ByteSpan(next_counter)), 16), 1);
  EVP_CIPHER_CTX_free(ecb);
  EXPECT_EQ(to_hex(ByteSpan(ks).subspan(16)), to_hex(block));
}

TEST(AesCtr, EmptyApplyLeavesStreamUnchanged) {
  AesCtr c = make(params(kNistKey, kNistCounter));
  Bytes data = hex(kNistPlain);
  c.apply(MutableByteSpan(data).first(0));
  c.apply(data);
  EXPECT_EQ(to_hex(data), kNistCipher);
}

TEST(AesCtr, ApplyDoesNotAllocate) {
  if (!g_counting_installed) GTEST_SKIP() << "OpenSSL allocated before the counter was installed";
  AesCtr c = make(params(kNistKey, kNistCounter));
  Bytes data(64 * 1024);
  c.apply(data);  // warm-up: nothing lazy may hide behind the first call
  const long before = g_openssl_allocs.load();
  for (int i = 0; i < 100; ++i) c.apply(data);
  EXPECT_EQ(g_openssl_allocs.load(), before);
  // The counter is live: creating a context does allocate.
  AesCtr other = make(params(kNistKey, kNistCounter));
  EXPECT_GT(g_openssl_allocs.load(), before);
}

}  // namespace
}  // namespace mtw::proto
