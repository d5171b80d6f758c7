#include "proto/tls_crypto.h"

#include <openssl/evp.h>

#include <memory>

#include "base/check.h"

namespace mtw::proto {
namespace {

constexpr std::size_t kBlock = 64;  // SHA-256 block size

// Fetched once: EVP_sha256() would re-resolve the provider on every init.
const EVP_MD* sha256_md() {
  static const EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  MTW_CHECK(md != nullptr);
  return md;
}

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};

EVP_MD_CTX* thread_md_ctx() {
  thread_local std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  MTW_CHECK(ctx != nullptr);
  return ctx.get();
}

}  // namespace

Sha256Digest hmac_sha256(ByteSpan key, std::initializer_list<ByteSpan> parts) {
  MTW_CHECK(key.size() <= kBlock);
  std::array<unsigned char, kBlock> pad{};
  for (std::size_t i = 0; i < key.size(); ++i) pad[i] = std::to_integer<unsigned char>(key[i]);
  for (auto& b : pad) b ^= 0x36;

  EVP_MD_CTX* ctx = thread_md_ctx();
  Sha256Digest inner{};
  unsigned int n = 0;
  MTW_CHECK(EVP_DigestInit_ex(ctx, sha256_md(), nullptr) == 1);
  MTW_CHECK(EVP_DigestUpdate(ctx, pad.data(), pad.size()) == 1);
  for (ByteSpan p : parts) {
    if (!p.empty()) MTW_CHECK(EVP_DigestUpdate(ctx, p.data(), p.size()) == 1);
  }
  MTW_CHECK(EVP_DigestFinal_ex(ctx, reinterpret_cast<unsigned char*>(inner.data()), &n) == 1);

  for (auto& b : pad) b ^= 0x36 ^ 0x5c;  // ipad -> opad
  Sha256Digest out{};
  MTW_CHECK(EVP_DigestInit_ex(ctx, sha256_md(), nullptr) == 1);
  MTW_CHECK(EVP_DigestUpdate(ctx, pad.data(), pad.size()) == 1);
  MTW_CHECK(EVP_DigestUpdate(ctx, inner.data(), inner.size()) == 1);
  MTW_CHECK(EVP_DigestFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()), &n) == 1);
  return out;
}

std::array<std::byte, 32> x25519_public_key(std::span<const std::byte, 32> private_key) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr,
                                   reinterpret_cast<const unsigned char*>(private_key.data()),
                                   private_key.size()),
      &EVP_PKEY_free);
  MTW_CHECK(pkey != nullptr);
  std::array<std::byte, 32> pub{};
  std::size_t len = pub.size();
  MTW_CHECK(EVP_PKEY_get_raw_public_key(pkey.get(), reinterpret_cast<unsigned char*>(pub.data()),
                                        &len) == 1);
  MTW_CHECK(len == pub.size());
  return pub;
}

}  // namespace mtw::proto
