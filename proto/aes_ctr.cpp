// AES-256-CTR over OpenSSL EVP. EVP keeps the partial-block keystream
// position inside the context, so a stream may be fed in chunks of any size.
#include "proto/aes_ctr.h"

#include <openssl/evp.h>

#include <algorithm>
#include <climits>
#include <utility>

#include "base/check.h"

namespace mtw::proto {

Result<AesCtr> AesCtr::create(const CipherParams& p) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr) return base::fail(Errc::kCrypto, "aes-ctr: EVP_CIPHER_CTX_new failed");
  AesCtr out(ctx);  // owns ctx from here on
  if (EVP_EncryptInit_ex(ctx, EVP_aes_256_ctr(), nullptr, uc(ByteSpan(p.key)),
                         uc(ByteSpan(p.iv))) != 1) {
    return base::fail(Errc::kCrypto, "aes-ctr: EVP_EncryptInit_ex failed");
  }
  return out;
}

AesCtr::AesCtr(AesCtr&& o) noexcept : ctx_(std::exchange(o.ctx_, nullptr)) {}

AesCtr& AesCtr::operator=(AesCtr&& o) noexcept {
  if (this != &o) {
    EVP_CIPHER_CTX_free(ctx_);
    ctx_ = std::exchange(o.ctx_, nullptr);
  }
  return *this;
}

AesCtr::~AesCtr() { EVP_CIPHER_CTX_free(ctx_); }

void AesCtr::apply(MutableByteSpan data) noexcept { apply(data, data); }

void AesCtr::apply(ByteSpan in, MutableByteSpan out) noexcept {
  MTW_CHECK(ctx_ != nullptr);
  MTW_CHECK(out.size() >= in.size());
  // EVP takes int lengths; a multiple of the block size keeps chunk
  // boundaries on block edges (not required by CTR, but cheaper).
  constexpr std::size_t kMaxChunk = std::size_t{1} << 30;
  std::size_t done = 0;
  while (done < in.size()) {
    const std::size_t n = std::min(in.size() - done, kMaxChunk);
    int written = 0;
    // CTR cannot fail on a valid context; a failure means memory corruption.
    MTW_CHECK(EVP_EncryptUpdate(ctx_, uc(out.subspan(done, n)), &written, uc(in.subspan(done, n)),
                                static_cast<int>(n)) == 1);
    MTW_CHECK(static_cast<std::size_t>(written) == n);
    done += n;
  }
}

}  // namespace mtw::proto
