// SHA-256 runs through OpenSSL's low-level SHA256_* interface: it calls the
// same assembly (SHA-NI where present) as EVP, without EVP's per-init provider
// dispatch and context allocation, and its state is a plain struct we can
// snapshot after the HMAC pad block. Those functions are deprecated in
// OpenSSL 3 but still built by every distribution we target; this file and
// nothing else relies on them.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "proto/tls_crypto.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <memory>

#include "base/check.h"

namespace mtw::proto {
namespace {

constexpr std::size_t kBlock = 64;  // SHA-256 block size

void update(SHA256_CTX& c, std::initializer_list<ByteSpan> parts) noexcept {
  for (ByteSpan p : parts) {
    if (!p.empty()) SHA256_Update(&c, p.data(), p.size());
  }
}

Sha256Digest finish(SHA256_CTX& c) noexcept {
  Sha256Digest out{};
  SHA256_Final(reinterpret_cast<unsigned char*>(out.data()), &c);
  return out;
}

// Chaining value after compressing one block: (key padded to 64) ^ `fill`.
std::array<std::uint32_t, 8> pad_state(ByteSpan key, unsigned char fill) noexcept {
  std::array<unsigned char, kBlock> pad{};
  pad.fill(fill);
  for (std::size_t i = 0; i < key.size(); ++i) pad[i] ^= std::to_integer<unsigned char>(key[i]);
  SHA256_CTX c;
  SHA256_Init(&c);
  SHA256_Update(&c, pad.data(), pad.size());  // exactly one block: num == 0 after
  std::array<std::uint32_t, 8> h{};
  std::copy(std::begin(c.h), std::end(c.h), h.begin());
  OPENSSL_cleanse(&c, sizeof c);
  OPENSSL_cleanse(pad.data(), pad.size());
  return h;
}

// A SHA-256 context that has absorbed exactly one 64-byte block ending in `h`.
SHA256_CTX resume(const std::array<std::uint32_t, 8>& h) noexcept {
  SHA256_CTX c;
  SHA256_Init(&c);
  std::copy(h.begin(), h.end(), std::begin(c.h));
  c.Nl = kBlock * 8;  // bit count so far (low word)
  c.Nh = 0;
  c.num = 0;
  return c;
}

}  // namespace

Sha256Digest sha256(std::initializer_list<ByteSpan> parts) noexcept {
  SHA256_CTX c;
  SHA256_Init(&c);
  update(c, parts);
  return finish(c);
}

HmacSha256Key::HmacSha256Key() noexcept : HmacSha256Key(ByteSpan{}) {}

HmacSha256Key::HmacSha256Key(ByteSpan key) noexcept {
  MTW_CHECK(key.size() <= kBlock);
  inner_ = pad_state(key, 0x36);
  outer_ = pad_state(key, 0x5c);
}

Sha256Digest HmacSha256Key::mac(std::initializer_list<ByteSpan> parts) const noexcept {
  SHA256_CTX c = resume(inner_);
  update(c, parts);
  const Sha256Digest inner = finish(c);
  c = resume(outer_);
  update(c, {inner});
  return finish(c);
}

Sha256Digest hmac_sha256(ByteSpan key, std::initializer_list<ByteSpan> parts) {
  return HmacSha256Key(key).mac(parts);
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
