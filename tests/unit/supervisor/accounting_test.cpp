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

TEST(Bill, MovedBaselinesBillEachByteOnce) {
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

const PeriodBounds kJune{1'717'200'000, 1'719'792'000};

TEST(MergeDeltas, TakesTheFirstSweepAsItIs) {
  std::vector<UsageDelta> pending;
  const UsageDelta d[] = {{1, 10, 20, kMay}, {2, 5, 5, kMay}};
  merge_deltas(pending, d);
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[1].user, 2);
}

TEST(MergeDeltas, AddsUpSweepsThatFailedToCommit) {
  std::vector<UsageDelta> pending;
  for (int sweep = 0; sweep < 100; ++sweep) {
    const UsageDelta d[] = {{1, 10, 20, kMay}, {2, 1, 0, kMay}};
    merge_deltas(pending, d);
  }
  ASSERT_EQ(pending.size(), 2u) << "one entry per user and period, however many sweeps";
  EXPECT_EQ(pending[0].bytes_up, 1000u);
  EXPECT_EQ(pending[0].bytes_down, 2000u);
  EXPECT_EQ(pending[1].bytes_up, 100u);
}

TEST(MergeDeltas, KeepsEachPeriodsBytesApart) {
  // A commit that fails across the end of a period: May's bytes stay May's.
  std::vector<UsageDelta> pending;
  const UsageDelta may[] = {{1, 10, 10, kMay}};
  const UsageDelta june[] = {{1, 3, 4, kJune}};
  merge_deltas(pending, may);
  merge_deltas(pending, june);
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].period.start, kMay.start);
  EXPECT_EQ(pending[0].bytes_up, 10u);
  EXPECT_EQ(pending[1].period.start, kJune.start);
  EXPECT_EQ(pending[1].bytes_down, 4u);
}

Limits monthly() {
  Limits l;
  l.period = Period::kMonthly;
  l.anchor_day = 1;
  return l;
}

TEST(CheckPeriod, KeepsThePeriodWhileNowIsInside) {
  const PeriodCheck c = check_period(kMay, monthly(), kMay.end - 1);
  EXPECT_FALSE(c.changed);
  EXPECT_FALSE(c.rolled_over);
  EXPECT_EQ(c.period, kMay);
}

TEST(CheckPeriod, RollsOverToTheNextPeriodAtItsEnd) {
  const PeriodCheck c = check_period(kMay, monthly(), kMay.end);
  EXPECT_TRUE(c.changed);
  EXPECT_TRUE(c.rolled_over);
  EXPECT_EQ(c.period, kJune);
}

TEST(CheckPeriod, AClockSetBackChangesThePeriodWithoutARollOver) {
  const PeriodCheck c = check_period(kJune, monthly(), kJune.start - 1);
  EXPECT_TRUE(c.changed);
  EXPECT_FALSE(c.rolled_over);
  EXPECT_EQ(c.period, kMay);
}

TEST(CheckPeriod, AFirstComputationIsNoRollOver) {
  const PeriodCheck c = check_period(PeriodBounds{0, 0}, monthly(), kMay.start + 10);
  EXPECT_TRUE(c.changed);
  EXPECT_FALSE(c.rolled_over);
  EXPECT_EQ(c.period, kMay);
}

}  // namespace
}  // namespace mtw::supervisor
