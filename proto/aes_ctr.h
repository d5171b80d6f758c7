// AES-256-CTR stream state over OpenSSL EVP. The counter continues across
// calls (a connection's stream spans many reads), and apply() never allocates.
// Move-only; one instance per direction per connection; not thread-safe.
#pragma once

#include <array>
#include <cstddef>

#include "proto/bytes.h"

struct evp_cipher_ctx_st;

namespace mtw::proto {

struct CipherParams {
  std::array<std::byte, 32> key{};
  std::array<std::byte, 16> iv{};  // 128-bit big-endian initial counter
  friend bool operator==(const CipherParams&, const CipherParams&) = default;
};

class AesCtr {
 public:
  // kCrypto if OpenSSL cannot allocate or initialise the context.
  [[nodiscard]] static Result<AesCtr> create(const CipherParams& p);

  AesCtr() noexcept = default;  // empty: apply() must not be called
  AesCtr(AesCtr&& o) noexcept;
  AesCtr& operator=(AesCtr&& o) noexcept;
  AesCtr(const AesCtr&) = delete;
  ~AesCtr();

  bool valid() const noexcept { return ctx_ != nullptr; }
  // XORs the keystream into `data` in place. `in` and `out` may alias fully;
  // out.size() must be >= in.size().
  void apply(MutableByteSpan data) noexcept;
  void apply(ByteSpan in, MutableByteSpan out) noexcept;

 private:
  explicit AesCtr(evp_cipher_ctx_st* ctx) noexcept : ctx_(ctx) {}
  evp_cipher_ctx_st* ctx_ = nullptr;
};

}  // namespace mtw::proto
