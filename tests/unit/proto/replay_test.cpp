// ReplayCache: window, FIFO eviction at capacity, index consistency under
// churn, and the memory bound for 1 M entries.
#include "proto/replay.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace mtw::proto {
namespace {

constexpr std::array<std::uint64_t, 2> kKey = {0x0123456789abcdefULL, 0xfedcba9876543210ULL};

Bytes digest(std::uint64_t i) {
  Bytes d(32);
  store_le32(d.data(), static_cast<std::uint32_t>(i));
  store_le32(d.data() + 4, static_cast<std::uint32_t>(i >> 32));
  return d;
}

ReplayCache make(std::size_t cap, std::int64_t window = 1000) {
  return ReplayCache({.max_entries = cap, .window_seconds = window, .hash_key = kKey});
}

TEST(ReplayCache, SecondSightingWithinTheWindowIsAReplay) {
  ReplayCache c = make(16);
  EXPECT_FALSE(c.check_and_insert(digest(1), 100));
  EXPECT_TRUE(c.check_and_insert(digest(1), 150));
  EXPECT_FALSE(c.check_and_insert(digest(2), 150));
  EXPECT_EQ(c.size(), 2u);
}

TEST(ReplayCache, EntriesExpireAfterTheWindow) {
  ReplayCache c = make(16, /*window=*/10);
  EXPECT_FALSE(c.check_and_insert(digest(1), 100));
  EXPECT_TRUE(c.contains(digest(1), 110));
  EXPECT_FALSE(c.contains(digest(1), 111));
  EXPECT_FALSE(c.check_and_insert(digest(1), 111));  // forgotten, remembered anew
  EXPECT_EQ(c.size(), 1u);
  EXPECT_TRUE(c.check_and_insert(digest(1), 121));
}

TEST(ReplayCache, ClockGoingBackwardsExpiresNothing) {
  ReplayCache c = make(16, 10);
  EXPECT_FALSE(c.check_and_insert(digest(1), 1000));
  EXPECT_TRUE(c.check_and_insert(digest(1), 500));
}

TEST(ReplayCache, ContainsDoesNotInsert) {
  ReplayCache c = make(16);
  EXPECT_FALSE(c.contains(digest(1), 1));
  EXPECT_EQ(c.size(), 0u);
  EXPECT_FALSE(c.check_and_insert(digest(1), 1));
}

TEST(ReplayCache, OldestFallsOutFirstAtCapacity) {
  ReplayCache c = make(4);
  for (std::uint64_t i = 0; i < 6; ++i) EXPECT_FALSE(c.check_and_insert(digest(i), 1));
  EXPECT_EQ(c.size(), 4u);
  EXPECT_FALSE(c.contains(digest(0), 1));
  EXPECT_FALSE(c.contains(digest(1), 1));
  for (std::uint64_t i = 2; i < 6; ++i) EXPECT_TRUE(c.contains(digest(i), 1)) << i;
}

TEST(ReplayCache, DigestsOfDifferentLengthsAreDistinct) {
  ReplayCache c = make(16);
  EXPECT_FALSE(c.check_and_insert(as_bytes("ab"), 1));
  EXPECT_FALSE(c.check_and_insert(as_bytes(std::string_view("ab\0", 3)), 1));
  EXPECT_FALSE(c.check_and_insert(as_bytes(""), 1));
  EXPECT_TRUE(c.check_and_insert(as_bytes("ab"), 1));
}

TEST(ReplayCache, IndexStaysConsistentUnderChurn) {
  // Small capacity, many evictions: exercises backward-shift deletion.
  constexpr std::size_t kCap = 1000;
  ReplayCache c = make(kCap, 1'000'000);
  for (std::uint64_t i = 0; i < 50'000; ++i) {
    ASSERT_FALSE(c.check_and_insert(digest(i), 1)) << i;
    if (i % 997 == 0 && i >= kCap) {
      for (std::uint64_t j = i + 1 - kCap; j <= i; ++j) ASSERT_TRUE(c.contains(digest(j), 1)) << j;
      ASSERT_FALSE(c.contains(digest(i - kCap), 1));
    }
  }
  EXPECT_EQ(c.size(), kCap);
}

TEST(ReplayCache, WindowExpiryEvictsFromTheFront) {
  ReplayCache c = make(100, 10);
  for (std::uint64_t i = 0; i < 10; ++i) EXPECT_FALSE(c.check_and_insert(digest(i), 100 + i));
  EXPECT_EQ(c.size(), 10u);
  EXPECT_FALSE(c.check_and_insert(digest(1000), 115));  // drops ts < 105
  EXPECT_EQ(c.size(), 6u);                              // 105..109 and the new one
  EXPECT_FALSE(c.contains(digest(4), 115));
  EXPECT_TRUE(c.contains(digest(5), 115));
}

TEST(ReplayCache, OneMillionEntriesFitWellUnder64MiB) {
  constexpr std::size_t kMillion = 1 << 20;
  ReplayCache c = make(kMillion, 3600);
  EXPECT_EQ(c.capacity(), kMillion);
  EXPECT_LE(c.memory_bytes(), 64u << 20);
  EXPECT_LE(c.memory_bytes(), 21u << 20);  // 20 bytes per entry
  const std::size_t before = c.memory_bytes();
  SeededRandom rnd(1);
  std::array<std::byte, 32> d{};
  for (std::size_t i = 0; i < kMillion; ++i) {
    rnd.fill(d);
    ASSERT_FALSE(c.check_and_insert(d, 1000));
  }
  EXPECT_EQ(c.size(), kMillion);
  EXPECT_EQ(c.memory_bytes(), before);  // fixed at construction
  SeededRandom again(1);
  std::size_t found = 0;
  for (std::size_t i = 0; i < kMillion; ++i) {
    again.fill(d);
    found += c.contains(d, 1000);
  }
  EXPECT_EQ(found, kMillion);
}

TEST(ReplayCache, MovedCacheKeepsItsEntries) {
  ReplayCache a = make(8);
  EXPECT_FALSE(a.check_and_insert(digest(5), 1));
  ReplayCache b = std::move(a);
  EXPECT_TRUE(b.contains(digest(5), 1));
}

}  // namespace
}  // namespace mtw::proto
