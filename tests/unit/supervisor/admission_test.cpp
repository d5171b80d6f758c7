#include "supervisor/admission.h"

#include <gtest/gtest.h>

namespace mtw::supervisor {
namespace {

TEST(Admit, WithoutCapOrBudgetAdmitsEverything) {
  EXPECT_TRUE(admit(AdmitInput{1'000'000, 0, 0}, BudgetView{}, 0));
}

TEST(Admit, RefusesAtThePerUserCap) {
  EXPECT_TRUE(admit(AdmitInput{2, 3, 0}, BudgetView{}, 0));
  EXPECT_FALSE(admit(AdmitInput{3, 3, 0}, BudgetView{}, 0));
}

TEST(Admit, RefusesWhenTheBudgetIsUsedUp) {
  const BudgetView b = budget_view(10, 10, 1, 1);
  EXPECT_FALSE(admit(AdmitInput{0, 0, 100}, b, 10));
}

TEST(Admit, UnderTheBudgetALightUserGetsInOnItsEqualShare) {
  // 100 connections for 4 demanding users: 25 each, whatever the allowance.
  const BudgetView b = budget_view(100, 60, 4, 4);
  EXPECT_TRUE(admit(AdmitInput{24, 0, 0}, b, 100));
  EXPECT_FALSE(admit(AdmitInput{25, 0, 0}, b, 100));
}

TEST(Admit, UnderTheBudgetAFairAllowanceAboveTheEqualShareCounts) {
  const BudgetView b = budget_view(100, 60, 4, 4);
  EXPECT_TRUE(admit(AdmitInput{39, 0, 40}, b, 100));
  EXPECT_FALSE(admit(AdmitInput{40, 0, 40}, b, 100));
}

TEST(BudgetView, WithoutABudgetIsEmpty) { EXPECT_EQ(budget_view(0, 50, 3, 3), BudgetView{}); }

TEST(BudgetView, CountsAtLeastOneDemandingUserAndOneLane) {
  const BudgetView b = budget_view(90, 0, 0, 0);
  EXPECT_EQ(b.equal, 90u);
  EXPECT_EQ(b.lanes, 1u);
}

TEST(BudgetTally, SumsEveryUsersLoad) {
  BudgetTally t;
  t.set(1, ConnLoad{5, true, true});
  t.set(2, ConnLoad{0, false, true});
  t.set(3, ConnLoad{7, true, false});
  EXPECT_EQ(t.view(100), budget_view(100, 12, 2, 2));
}

TEST(BudgetTally, ASetReplacesThatUsersEarlierLoadOnly) {
  BudgetTally t;
  t.set(1, ConnLoad{5, true, true});
  t.set(2, ConnLoad{3, true, true});
  t.set(1, ConnLoad{1, false, false});
  EXPECT_EQ(t.view(100), budget_view(100, 4, 1, 1));
}

TEST(BudgetTally, EraseTakesTheUserOut) {
  BudgetTally t;
  t.set(1, ConnLoad{5, true, true});
  t.set(2, ConnLoad{3, true, true});
  t.erase(2);
  t.erase(7);  // unknown: nothing
  EXPECT_EQ(t.view(100), budget_view(100, 5, 1, 1));
}

TEST(BudgetTally, EqualsAFreshCountAfterAnyUpdates) {
  // Property: whatever the order of updates, the totals are those of the
  // last load of each user.
  BudgetTally t;
  ConnLoad last[8] = {};
  std::uint64_t x = 12345;
  for (int i = 0; i < 2000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const UserId u = static_cast<UserId>((x >> 33) % 8);
    const ConnLoad l{(x >> 20) % 50, ((x >> 10) & 1) != 0, ((x >> 11) & 1) != 0};
    t.set(u, l);
    last[u] = l;
  }
  std::uint64_t used = 0, demanding = 0, lanes = 0;
  for (const ConnLoad& l : last) {
    used += l.taken;
    demanding += l.demanding;
    lanes += l.lane_holder;
  }
  EXPECT_EQ(t.view(1000), budget_view(1000, used, demanding, lanes));
}

}  // namespace
}  // namespace mtw::supervisor
