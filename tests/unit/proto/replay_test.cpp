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

TEST(ReplayCache, JournalHoldsTheNewInsertsInOrderUpToItsBound) {
  ReplayCache c = make(16);
  EXPECT_TRUE(c.take_journal().empty());  // off until enabled
  c.check_and_insert(digest(1), 100);
  c.enable_journal(2);
  c.check_and_insert(digest(2), 101);
  c.check_and_insert(digest(2), 102);  // a replay is no insert
  c.check_and_insert(digest(3), 103);
  c.check_and_insert(digest(4), 104);  // over the bound: the oldest gives way
  auto j = c.take_journal();
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0].time, 103u);
  EXPECT_EQ(j[1].time, 104u);
  EXPECT_EQ(c.journal_dropped(), 1u);
  EXPECT_TRUE(c.take_journal().empty());
  EXPECT_TRUE(c.contains(digest(2), 105));  // still cached
}

TEST(ReplayCache, RestoredUnderTheSameKeyRecognisesReplays) {
  ReplayCache a = make(16, 100);
  a.enable_journal(16);
  for (int i = 1; i <= 5; ++i) a.check_and_insert(digest(i), 1000 + i);
  const auto j = a.take_journal();
  ReplayCache b({.max_entries = 16, .window_seconds = 100, .hash_key = a.hash_key()});
  for (const auto& e : j) b.restore(e, 1103);  // entries 1 and 2 are past the window
  EXPECT_EQ(b.size(), 3u);
  EXPECT_FALSE(b.contains(digest(2), 1103));
  EXPECT_TRUE(b.check_and_insert(digest(3), 1103));
  EXPECT_TRUE(b.check_and_insert(digest(5), 1103));
  EXPECT_FALSE(b.check_and_insert(digest(6), 1103));
  b.restore(j[4], 1103);  // already there: nothing changes
  EXPECT_EQ(b.size(), 4u);
  // Another key: the fingerprints mean nothing.
  ReplayCache other({.max_entries = 16, .window_seconds = 100, .hash_key = {1, 2}});
  for (const auto& e : j) other.restore(e, 1103);
  EXPECT_FALSE(other.contains(digest(5), 1103));
}

TEST(ReplayFile, HeaderRoundTripsAndRejectsDamage) {
  const ReplayFileHeader h{{1, 2}, 1u << 20, 123'456'789'012ULL};
  const Bytes b = encode_replay_header(h);
  ASSERT_EQ(b.size(), kReplayFileHeaderBytes);
  EXPECT_EQ(*decode_replay_header(b), h);
  EXPECT_EQ(decode_replay_header(ByteSpan(b).first(63)).error().code, Errc::kShortInput);
  Bytes bad = b;
  bad[0] = std::byte{'X'};
  EXPECT_FALSE(decode_replay_header(bad).has_value());
  bad = b;
  bad[50] = std::byte{1};
  EXPECT_FALSE(decode_replay_header(bad).has_value());
  EXPECT_FALSE(decode_replay_header(encode_replay_header({{0, 0}, 16, 0})).has_value());
  EXPECT_FALSE(decode_replay_header(encode_replay_header({{1, 2}, 0, 0})).has_value());
  EXPECT_EQ(replay_file_bytes(1u << 20), 64u + 12u * (1u << 20));
}

TEST(ReplayFile, SlotsComeBackOldestFirstAfterTheRingWraps) {
  // Capacity 4, 6 inserts made: slots hold inserts 4,5,2,3 (n % 4); the
  // oldest is at next % 4 = 2.
  const ReplayFileHeader h{{1, 2}, 4, 6};
  Bytes body(4 * kReplayFileSlotBytes);
  const std::uint32_t seq[4] = {4, 5, 2, 3};
  for (std::size_t i = 0; i < 4; ++i)
    encode_replay_slot({1000 + seq[i], 100 + seq[i]},
                       std::span<std::byte, kReplayFileSlotBytes>(
                           body.data() + i * kReplayFileSlotBytes, kReplayFileSlotBytes));
  auto got = replay_slots_in_order(body, h);
  ASSERT_EQ(got.size(), 4u);
  for (std::size_t k = 0; k < 4; ++k) EXPECT_EQ(got[k].time, 102u + k);
  // A young file: empty slots are left out, a short body is read as far as it goes.
  const ReplayFileHeader young{{1, 2}, 4, 2};
  Bytes two(2 * kReplayFileSlotBytes);
  encode_replay_slot({7, 9}, std::span<std::byte, kReplayFileSlotBytes>(two.data(), 12));
  encode_replay_slot({8, 10}, std::span<std::byte, kReplayFileSlotBytes>(two.data() + 12, 12));
  auto y = replay_slots_in_order(two, young);
  ASSERT_EQ(y.size(), 2u);
  EXPECT_EQ(y[0], (ReplayEntry{7, 9}));
  EXPECT_EQ(y[1], (ReplayEntry{8, 10}));
}

}  // namespace
}  // namespace mtw::proto
