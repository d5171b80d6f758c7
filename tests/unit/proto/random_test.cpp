#include "proto/random.h"

#include <gtest/gtest.h>

#include <array>
#include <set>

namespace mtw::proto {
namespace {

// Expected values: splitmix64(0) seeding (first output 0xe220a8397b1dcdaf, the
// published splitmix64 value) followed by the xoshiro256** reference step.
TEST(SeededRandom, MatchesXoshiro256StarStarReference) {
  SeededRandom rnd(0);
  EXPECT_EQ(rnd.next(), 0x99ec5f36cb75f2b4ULL);
  EXPECT_EQ(rnd.next(), 0xbf6e1f784956452aULL);
  EXPECT_EQ(rnd.next(), 0x1a5f849d4933e6e0ULL);
}

TEST(SeededRandom, SameSeedGivesSameStream) {
  SeededRandom a(42), b(42), c(43);
  std::array<std::byte, 37> x{}, y{}, z{};
  a.fill(x);
  b.fill(y);
  c.fill(z);
  EXPECT_EQ(x, y);
  EXPECT_NE(x, z);
}

TEST(RandomSource, UniformStaysInsideInclusiveRange) {
  SeededRandom rnd(3);
  std::set<std::uint32_t> seen;
  for (int i = 0; i < 2000; ++i) {
    const std::uint32_t v = rnd.uniform(5, 9);
    ASSERT_GE(v, 5u);
    ASSERT_LE(v, 9u);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(rnd.uniform(7, 7), 7u);
  rnd.uniform(0, 0xffffffffu);  // full range must not divide by zero
}

// A source whose bytes are scripted: shows uniform() rejects the biased top bucket.
class ScriptedRandom final : public RandomSource {
 public:
  explicit ScriptedRandom(std::vector<std::uint32_t> words) : words_(std::move(words)) {}
  void fill(MutableByteSpan out) override {
    ASSERT_EQ(out.size(), 4u);
    store_le32(out.data(), words_.at(next_++));
  }
  std::size_t used() const { return next_; }

 private:
  std::vector<std::uint32_t> words_;
  std::size_t next_ = 0;
};

TEST(RandomSource, UniformRejectsDrawsFromIncompleteBucket) {
  // Range 3: 2^32 % 3 == 1, so 0xffffffff is the single rejected value.
  ScriptedRandom rnd({0xffffffffu, 4});
  EXPECT_EQ(rnd.uniform(0, 2), 1u);
  EXPECT_EQ(rnd.used(), 2u);
}

TEST(SystemRandom, FillsDistinctBuffers) {
  std::array<std::byte, 32> a{}, b{};
  system_random().fill(a);
  system_random().fill(b);
  EXPECT_NE(a, b);
  EXPECT_NE(a, (std::array<std::byte, 32>{}));
}

}  // namespace
}  // namespace mtw::proto
