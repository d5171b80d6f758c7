// RandomSource: where proto/ gets random bytes. Production uses OpenSSL's
// CSPRNG; tests pass a seeded source so outputs are reproducible.
#pragma once

#include <cstdint>

#include "proto/bytes.h"

namespace mtw::proto {

class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual void fill(MutableByteSpan out) = 0;
  std::uint32_t uniform(std::uint32_t lo, std::uint32_t hi);  // inclusive range
};

// OpenSSL RAND_bytes; aborts (MTW_CHECK) if the CSPRNG fails, which only
// happens when the system has no entropy source at all. Thread-safe.
RandomSource& system_random();

// Deterministic xoshiro256** stream for tests, benchmarks and fuzzers. Not thread-safe.
class SeededRandom final : public RandomSource {
 public:
  explicit SeededRandom(std::uint64_t seed);
  void fill(MutableByteSpan out) override;
  std::uint64_t next();

 private:
  std::uint64_t s_[4];
};

}  // namespace mtw::proto
