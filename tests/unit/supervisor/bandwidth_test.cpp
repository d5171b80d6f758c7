#include "supervisor/bandwidth.h"

#include <gtest/gtest.h>

#include <numeric>
#include <random>

using namespace mtw::supervisor;

namespace {

constexpr std::uint64_t M = 1'000'000;

// A user held at its shaper's rate (it would take more).
BandwidthDemand held(std::uint64_t shaped, std::uint32_t weight = 1) {
  return {.measured_bps = shaped, .shaped_bps = shaped, .cap_bps = 0, .weight = weight};
}
BandwidthDemand light(std::uint64_t measured) {
  return {.measured_bps = measured, .shaped_bps = 100 * M, .cap_bps = 0, .weight = 1};
}

}  // namespace

TEST(SplitBudget, WithoutABudgetEveryUserKeepsItsOwnCap) {
  std::vector<BandwidthDemand> u{held(10 * M), {.measured_bps = 5, .cap_bps = 7 * M}};
  auto s = split_budget(0, u);
  EXPECT_EQ(s.rate_bps, (std::vector<std::uint64_t>{0, 7 * M}));
  EXPECT_EQ(s.level_bps, 0u);
}

TEST(SplitBudget, LightUsersKeepWhatTheyNeedAndHeavyOnesShareTheRest) {
  // 60 Mbit/s for: one using 10, one using 30, one held at 50 and wanting more.
  std::vector<BandwidthDemand> u{light(10 * M), light(30 * M), held(50 * M)};
  auto s = split_budget(60 * M, u);
  // 60/3 = 20 >= 10: the first keeps 10; 50/2 = 25 < 30: the other two are held at 25.
  EXPECT_EQ(s.level_bps, 25 * M);
  EXPECT_EQ(s.rate_bps, (std::vector<std::uint64_t>{25 * M, 25 * M, 25 * M}));
  // What they can use adds up to the budget: 10 (its need) + 25 + 25.
}

TEST(SplitBudget, NobodyIsHeldWhenTheBudgetCoversEveryDemand) {
  std::vector<BandwidthDemand> u{light(10 * M), light(20 * M), {}};
  auto s = split_budget(100 * M, u);
  EXPECT_EQ(s.level_bps, 0u);
  EXPECT_EQ(s.rate_bps, (std::vector<std::uint64_t>{0, 0, 0}));
}

TEST(SplitBudget, WeightsDivideTheHeldShare) {
  std::vector<BandwidthDemand> u{held(90 * M, 1), held(90 * M, 3)};
  auto s = split_budget(80 * M, u);
  EXPECT_EQ(s.rate_bps, (std::vector<std::uint64_t>{20 * M, 60 * M}));
}

TEST(SplitBudget, AUserNeverGetsMoreThanItsOwnCapAndItsShareGoesToOthers) {
  // The first is held at its own 5 Mbit/s limit: it can use no more, so the
  // other two split 95.
  std::vector<BandwidthDemand> u{
      {.measured_bps = 5 * M, .shaped_bps = 5 * M, .cap_bps = 5 * M}, held(80 * M), held(80 * M)};
  auto s = split_budget(100 * M, u);
  EXPECT_EQ(s.rate_bps[0], 5 * M);
  EXPECT_EQ(s.rate_bps[1], 47'500'000u);
  EXPECT_EQ(s.rate_bps[2], 47'500'000u);
}

TEST(SplitBudget, AUserThatStopsFreesItsShare) {
  std::vector<BandwidthDemand> u{held(30 * M), held(30 * M), held(30 * M)};
  EXPECT_EQ(split_budget(90 * M, u).level_bps, 30 * M);
  u[2] = {.measured_bps = 0, .shaped_bps = 30 * M};
  auto s = split_budget(90 * M, u);
  EXPECT_EQ(s.level_bps, 45 * M);
  // The idle one may start again at once, at the level.
  EXPECT_EQ(s.rate_bps, (std::vector<std::uint64_t>{45 * M, 45 * M, 45 * M}));
}

TEST(SplitBudget, OnlyAUserNearItsShaperRateCountsAsHeld) {
  // 85 of 100 is below kSaturated: it took what it wanted.
  std::vector<BandwidthDemand> u{{.measured_bps = 85 * M, .shaped_bps = 100 * M}, held(100 * M)};
  // 200/2 = 100 >= 85: the first keeps its 85; the held one gets the other 115.
  auto s = split_budget(200 * M, u);
  EXPECT_EQ(s.level_bps, 115 * M);
}

TEST(SplitBudget, IsMaxMinFairOnRandomDemands) {
  // Property: the usable rates (min(need, rate)) never exceed the budget;
  // every user either gets its whole need or the largest rate anyone held
  // gets (per weight), so no one can gain without taking from someone
  // poorer.
  std::mt19937_64 rng(3);
  for (int round = 0; round < 500; ++round) {
    std::vector<BandwidthDemand> u(1 + rng() % 12);
    for (auto& d : u) {
      d.shaped_bps = (1 + rng() % 100) * M;
      d.measured_bps = rng() % 2 ? d.shaped_bps : rng() % d.shaped_bps;
      d.weight = 1 + static_cast<std::uint32_t>(rng() % 4);
    }
    const std::uint64_t budget = (1 + rng() % 300) * M;
    auto s = split_budget(budget, u);
    double used = 0;
    for (std::size_t i = 0; i < u.size(); ++i) {
      const bool is_held = static_cast<double>(u[i].measured_bps) >= kSaturated * u[i].shaped_bps;
      const double need = is_held ? 1e18 : static_cast<double>(u[i].measured_bps);
      const double rate = s.rate_bps[i] == 0 ? 1e18 : static_cast<double>(s.rate_bps[i]);
      used += std::min(need, rate);
      if (s.level_bps == 0) {
        EXPECT_EQ(s.rate_bps[i], 0u);
      } else if (need > rate) {
        EXPECT_NEAR(rate, static_cast<double>(s.level_bps) * u[i].weight, u[i].weight + 1.0);
      } else {
        // Not held: its need fits under its weighted level.
        EXPECT_LE(need, static_cast<double>(s.level_bps) * u[i].weight + u[i].weight + 1.0);
      }
    }
    if (s.level_bps != 0) {
      EXPECT_LE(used, static_cast<double>(budget) + 2.0 * u.size());
    }
  }
}
