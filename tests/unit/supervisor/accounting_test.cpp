#include "supervisor/accounting.h"

#include <gtest/gtest.h>

namespace mtw::supervisor {
namespace {

const PeriodBounds kMay{1'714'521'600, 1'717'200'000};

TEST(MovedSince, IsTheDifferenceFromTheBaseline) {
  EXPECT_EQ(moved_since({100, 200}, {150, 260}), (CellBytes{50, 60}));
}

TEST(MovedSince, CountsACounterBelowItsBaselineWhole) {
  // A recreated link starts from zero: what it shows now all moved since.
  EXPECT_EQ(moved_since({1000, 200}, {40, 260}), (CellBytes{40, 60}));
}

TEST(Bill, HasADeltaOnlyForCellsThatMovedBytes) {
  const CellReading r[] = {{1, kMay, {10, 10}, {10, 10}}, {2, kMay, {0, 0}, {5, 7}}};
  const SweepBill b = bill(r);
  ASSERT_EQ(b.deltas.size(), 1u);
  EXPECT_EQ(b.deltas[0].user, 2);
  EXPECT_EQ(b.deltas[0].bytes_up, 5u);
  EXPECT_EQ(b.deltas[0].bytes_down, 7u);
  EXPECT_EQ(b.deltas[0].period.start, kMay.start);
}

TEST(Bill, OffersEveryReadingsCountersAsTheNextBaseline) {
  const CellReading r[] = {{1, kMay, {10, 10}, {10, 10}}, {2, kMay, {0, 0}, {5, 7}}};
  const SweepBill b = bill(r);
  ASSERT_EQ(b.next_baselines.size(), 2u);
  EXPECT_EQ(b.next_baselines[0], (std::pair<UserId, CellBytes>{1, {10, 10}}));
  EXPECT_EQ(b.next_baselines[1], (std::pair<UserId, CellBytes>{2, {5, 7}}));
}

TEST(Bill, ASweepWhoseCommitFailedIsBilledWholeByTheNext) {
  // Sweep 1 is never committed, so its baselines are not adopted: sweep 2
  // bills from the old baseline and nothing is lost.
  const CellReading first[] = {{7, kMay, {0, 0}, {100, 1000}}};
  const SweepBill lost = bill(first);
  ASSERT_EQ(lost.deltas.size(), 1u);
  const CellReading second[] = {{7, kMay, {0, 0}, {150, 1600}}};
  const SweepBill b = bill(second);
  ASSERT_EQ(b.deltas.size(), 1u);
  EXPECT_EQ(b.deltas[0].bytes_up, 150u);
  EXPECT_EQ(b.deltas[0].bytes_down, 1600u);
}

TEST(Bill, CommittedBaselinesBillEachByteOnce) {
  CellBytes baseline{};
  std::uint64_t billed_up = 0, billed_down = 0;
  const CellBytes readings[] = {{10, 20}, {10, 20}, {35, 90}, {1000, 1000}};
  for (const CellBytes& now : readings) {
    const CellReading r[] = {{3, kMay, baseline, now}};
    const SweepBill b = bill(r);
    for (const auto& d : b.deltas) {
      billed_up += d.bytes_up;
      billed_down += d.bytes_down;
    }
    baseline = b.next_baselines.at(0).second;
  }
  EXPECT_EQ(billed_up, 1000u);
  EXPECT_EQ(billed_down, 1000u);
}

}  // namespace
}  // namespace mtw::supervisor
