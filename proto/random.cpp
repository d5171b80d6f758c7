// Random sources: OpenSSL's CSPRNG for production, xoshiro256** for
// reproducible tests. See random.h.
#include "proto/random.h"

#include <openssl/rand.h>

#include <climits>

#include "base/check.h"

namespace mtw::proto {
namespace {

class SystemRandom final : public RandomSource {
 public:
  void fill(MutableByteSpan out) override {
    // RAND_bytes takes an int length; OpenSSL 3's default DRBG is thread-safe.
    while (!out.empty()) {
      const std::size_t n = out.size() < INT_MAX ? out.size() : INT_MAX;
      MTW_CHECK(RAND_bytes(uc(out), static_cast<int>(n)) == 1);
      out = out.subspan(n);
    }
  }
};

std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }

// splitmix64 spreads a small seed over the 256-bit state, as the xoshiro
// authors recommend (an all-zero state would be a fixed point).
std::uint64_t splitmix64(std::uint64_t& x) noexcept {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

std::uint32_t RandomSource::uniform(std::uint32_t lo, std::uint32_t hi) {
  MTW_CHECK(lo <= hi);
  const std::uint64_t range = std::uint64_t{hi} - lo + 1;
  // Reject draws from the incomplete top bucket so every value is equally likely.
  const std::uint64_t limit = (std::uint64_t{1} << 32) - ((std::uint64_t{1} << 32) % range);
  for (;;) {
    std::byte raw[4];
    fill(raw);
    const std::uint64_t v = load_le32(raw);
    if (v < limit) return lo + static_cast<std::uint32_t>(v % range);
  }
}

RandomSource& system_random() {
  static SystemRandom instance;
  return instance;
}

SeededRandom::SeededRandom(std::uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);
}

std::uint64_t SeededRandom::next() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

void SeededRandom::fill(MutableByteSpan out) {
  while (!out.empty()) {
    const std::uint64_t v = next();
    const std::size_t n = out.size() < 8 ? out.size() : 8;
    for (std::size_t i = 0; i < n; ++i) out[i] = std::byte((v >> (8 * i)) & 0xff);
    out = out.subspan(n);
  }
}

}  // namespace mtw::proto
