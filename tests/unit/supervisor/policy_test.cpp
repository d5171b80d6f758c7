#include "supervisor/policy.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <numeric>
#include <random>

namespace mtw::supervisor {
namespace {

UnixSeconds utc(int y, unsigned m, unsigned d, int hour = 0) {
  using namespace std::chrono;
  return sys_seconds(sys_days(year{y} / month{m} / day{d})).time_since_epoch().count() +
         hour * 3600;
}

PeriodBounds span(UnixSeconds a, UnixSeconds b) { return {a, b}; }

TEST(PeriodBounds, DailyRunsMidnightToMidnightUtc) {
  EXPECT_EQ(period_bounds(Period::kDaily, 1, utc(2024, 3, 15, 13)),
            span(utc(2024, 3, 15), utc(2024, 3, 16)));
}

TEST(PeriodBounds, WeeklyStartsOnTheAnchorWeekday) {
  // 2024-03-15 is a Friday.
  EXPECT_EQ(period_bounds(Period::kWeekly, 1, utc(2024, 3, 15, 13)),
            span(utc(2024, 3, 11), utc(2024, 3, 18)));
  EXPECT_EQ(period_bounds(Period::kWeekly, 5, utc(2024, 3, 15)),
            span(utc(2024, 3, 15), utc(2024, 3, 22)));
  EXPECT_EQ(period_bounds(Period::kWeekly, 7, utc(2024, 3, 15)),
            span(utc(2024, 3, 10), utc(2024, 3, 17)));
}

TEST(PeriodBounds, MonthlyOnTheFirst) {
  EXPECT_EQ(period_bounds(Period::kMonthly, 1, utc(2024, 3, 15)),
            span(utc(2024, 3, 1), utc(2024, 4, 1)));
}

TEST(PeriodBounds, MonthlyCrossesTheYearEnd) {
  EXPECT_EQ(period_bounds(Period::kMonthly, 1, utc(2024, 12, 20)),
            span(utc(2024, 12, 1), utc(2025, 1, 1)));
  EXPECT_EQ(period_bounds(Period::kMonthly, 15, utc(2025, 1, 10)),
            span(utc(2024, 12, 15), utc(2025, 1, 15)));
}

TEST(PeriodBounds, Anchor31ClampsToTheLastDayOfFebruaryInALeapYear) {
  EXPECT_EQ(period_bounds(Period::kMonthly, 31, utc(2024, 2, 10)),
            span(utc(2024, 1, 31), utc(2024, 2, 29)));
  EXPECT_EQ(period_bounds(Period::kMonthly, 31, utc(2024, 2, 29, 12)),
            span(utc(2024, 2, 29), utc(2024, 3, 31)));
}

TEST(PeriodBounds, Anchor31ClampsToThe28thInACommonYear) {
  EXPECT_EQ(period_bounds(Period::kMonthly, 31, utc(2023, 2, 28, 1)),
            span(utc(2023, 2, 28), utc(2023, 3, 31)));
  EXPECT_EQ(period_bounds(Period::kMonthly, 31, utc(2023, 3, 1)),
            span(utc(2023, 2, 28), utc(2023, 3, 31)));
}

TEST(PeriodBounds, BeforeTheAnchorDayThePeriodStartedLastMonth) {
  EXPECT_EQ(period_bounds(Period::kMonthly, 30, utc(2023, 5, 1)),
            span(utc(2023, 4, 30), utc(2023, 5, 30)));
}

TEST(PeriodBounds, TheEndInstantBelongsToTheNextPeriod) {
  EXPECT_EQ(period_bounds(Period::kMonthly, 1, utc(2024, 4, 1)),
            span(utc(2024, 4, 1), utc(2024, 5, 1)));
  EXPECT_EQ(period_bounds(Period::kMonthly, 1, utc(2024, 4, 1) - 1),
            span(utc(2024, 3, 1), utc(2024, 4, 1)));
}

TEST(PeriodBounds, CenturyNonLeapYear2100) {
  EXPECT_EQ(period_bounds(Period::kMonthly, 29, utc(2100, 3, 5)),
            span(utc(2100, 2, 28), utc(2100, 3, 29)));
}

TEST(PeriodBounds, LifetimeNeverEnds) {
  EXPECT_EQ(period_bounds(Period::kLifetime, 1, utc(2024, 3, 15)), span(0, kForever));
}

// For random instants 1970..2200 and every anchor: now lies in its period,
// and the period after it starts exactly at its end (no gaps, no overlap).
TEST(PeriodBounds, PropertyPeriodsContainNowAndTile) {
  std::mt19937_64 rng(20240229);
  std::uniform_int_distribution<UnixSeconds> when(0, utc(2200, 1, 1));
  for (int i = 0; i < 20000; ++i) {
    const UnixSeconds now = when(rng);
    for (Period p : {Period::kDaily, Period::kWeekly, Period::kMonthly}) {
      const int anchor = 1 + static_cast<int>(rng() % (p == Period::kWeekly ? 7 : 31));
      const PeriodBounds b = period_bounds(p, anchor, now);
      ASSERT_LE(b.start, now);
      ASSERT_LT(now, b.end);
      ASSERT_EQ(b.start % 86400, 0);
      ASSERT_EQ(period_bounds(p, anchor, b.end).start, b.end) << "anchor " << anchor;
      ASSERT_LE(b.end - b.start, 31 * 86400);
    }
  }
}

Limits quota_limits(std::uint64_t quota) {
  Limits l;
  l.quota_bytes = quota;
  l.period = Period::kMonthly;
  l.anchor_day = 1;
  l.throttle_bps = 2'000'000;
  return l;
}

TEST(QuotaStatus, NoQuotaIsAlwaysNormal) {
  EXPECT_EQ(quota_status(quota_limits(0), 1ull << 50, utc(2024, 3, 5)).state, QuotaState::kNormal);
}

TEST(QuotaStatus, WarnsAtEightyPercent) {
  const Limits l = quota_limits(1000);
  EXPECT_EQ(quota_status(l, 799, utc(2024, 3, 5)).state, QuotaState::kNormal);
  EXPECT_EQ(quota_status(l, 800, utc(2024, 3, 5)).state, QuotaState::kWarned);
  EXPECT_EQ(quota_status(l, 999, utc(2024, 3, 5)).state, QuotaState::kWarned);
}

TEST(QuotaStatus, ThrottlesAtTheQuotaUntilThePeriodEnds) {
  const QuotaStatus s = quota_status(quota_limits(1000), 1000, utc(2024, 3, 5));
  EXPECT_EQ(s.state, QuotaState::kThrottled);
  EXPECT_EQ(s.remaining_bytes, 0u);
  EXPECT_EQ(s.resets_at, utc(2024, 4, 1));
}

TEST(QuotaStatus, WarnPercentIsConfigurable) {
  Limits l = quota_limits(1000);
  l.warn_percent = 50;
  EXPECT_EQ(quota_status(l, 500, utc(2024, 3, 5)).state, QuotaState::kWarned);
  EXPECT_EQ(quota_status(l, 499, utc(2024, 3, 5)).remaining_bytes, 501u);
}

TEST(QuotaStatus, HugeQuotasDoNotOverflow) {
  const Limits l = quota_limits(std::uint64_t{1} << 62);
  EXPECT_EQ(quota_status(l, (std::uint64_t{1} << 62) - 1, utc(2024, 3, 5)).state,
            QuotaState::kWarned);
}

TEST(EffectiveRate, NormalUserGetsConfiguredRates) {
  Limits l = quota_limits(1000);
  l.rate_up_bps = 5'000'000;
  l.rate_down_bps = 20'000'000;
  const EffectiveRate r = effective_rate(l, QuotaState::kWarned, 1);
  EXPECT_EQ(r.up_bps, 5'000'000u);
  EXPECT_EQ(r.down_bps, 20'000'000u);
  EXPECT_FALSE(r.reasons.any());
}

TEST(EffectiveRate, QuotaThrottleAppliesToUnlimitedAndFastRates) {
  Limits l = quota_limits(1000);
  l.rate_down_bps = 20'000'000;
  const EffectiveRate r = effective_rate(l, QuotaState::kThrottled, 1);
  EXPECT_EQ(r.up_bps, 2'000'000u);
  EXPECT_EQ(r.down_bps, 2'000'000u);
  EXPECT_TRUE(r.reasons.quota);
  EXPECT_EQ(r.reason_text, "quota used up");
}

TEST(EffectiveRate, ThrottleNeverRaisesASlowerRate) {
  Limits l = quota_limits(1000);
  l.rate_up_bps = 500'000;
  EXPECT_EQ(effective_rate(l, QuotaState::kThrottled, 0).up_bps, 500'000u);
}

TEST(EffectiveRate, TooManyUniqueIpsThrottlesWithAReason) {
  Limits l = quota_limits(0);
  l.max_unique_ips = 2;
  EXPECT_FALSE(effective_rate(l, QuotaState::kNormal, 2).reasons.any());
  const EffectiveRate r = effective_rate(l, QuotaState::kNormal, 3);
  EXPECT_TRUE(r.reasons.unique_ips);
  EXPECT_FALSE(r.reasons.quota);
  EXPECT_EQ(r.down_bps, 2'000'000u);
  EXPECT_EQ(r.reason_text, "3 unique IPs > limit 2");
}

TEST(EffectiveRate, BothReasonsAreReported) {
  Limits l = quota_limits(1000);
  l.max_unique_ips = 1;
  const EffectiveRate r = effective_rate(l, QuotaState::kThrottled, 4);
  EXPECT_EQ(r.reasons, (ThrottleReasons{true, true}));
  EXPECT_EQ(r.reason_text, "quota used up; 4 unique IPs > limit 1");
}

std::vector<std::uint32_t> share(std::uint64_t budget, std::vector<ConnectionDemand> d) {
  return fair_share(budget, d);
}

TEST(FairShare, EveryoneGetsTheirWantWhenItFits) {
  EXPECT_EQ(share(100, {{10, 0}, {20, 0}, {30, 0}}), (std::vector<std::uint32_t>{10, 20, 30}));
}

TEST(FairShare, LightUsersKeepAllAndHeavyUsersSplitTheRest) {
  EXPECT_EQ(share(10, {{2, 0}, {8, 0}, {8, 0}}), (std::vector<std::uint32_t>{2, 4, 4}));
  EXPECT_EQ(share(12, {{1, 0}, {20, 0}, {1, 0}}), (std::vector<std::uint32_t>{1, 10, 1}));
}

TEST(FairShare, PerUserCapLimitsTheWant) {
  EXPECT_EQ(share(100, {{50, 5}, {10, 0}}), (std::vector<std::uint32_t>{5, 10}));
  EXPECT_EQ(share(9, {{50, 3}, {50, 0}, {50, 0}}), (std::vector<std::uint32_t>{3, 3, 3}));
  EXPECT_EQ(share(10, {{50, 2}, {50, 0}, {50, 0}}), (std::vector<std::uint32_t>{2, 4, 4}));
}

TEST(FairShare, RemainderGoesToLowestIndicesDeterministically) {
  EXPECT_EQ(share(10, {{5, 0}, {5, 0}, {5, 0}}), (std::vector<std::uint32_t>{4, 3, 3}));
  EXPECT_EQ(share(11, {{9, 0}, {1, 0}, {9, 0}, {9, 0}}), (std::vector<std::uint32_t>{4, 1, 3, 3}));
}

TEST(FairShare, ZeroBudgetGivesNothing) {
  EXPECT_EQ(share(0, {{5, 0}, {1, 0}}), (std::vector<std::uint32_t>{0, 0}));
}

TEST(FairShare, NoUsersNoAllocations) { EXPECT_TRUE(share(10, {}).empty()); }

// Random demands and caps with fixed seeds: the max-min guarantees hold.
TEST(FairShare, PropertyMaxMinGuarantees) {
  for (std::uint64_t seed : {1u, 2u, 3u, 42u, 1234u, 99991u}) {
    std::mt19937_64 rng(seed);
    for (int round = 0; round < 500; ++round) {
      const std::size_t n = rng() % 40;
      std::vector<ConnectionDemand> d(n);
      std::uint64_t total_want = 0;
      std::vector<std::uint32_t> want(n);
      for (std::size_t i = 0; i < n; ++i) {
        d[i] = {static_cast<std::uint32_t>(rng() % 200),
                static_cast<std::uint32_t>(rng() % 3 == 0 ? rng() % 100 : 0)};
        want[i] = d[i].cap ? std::min(d[i].demand, d[i].cap) : d[i].demand;
        total_want += want[i];
      }
      const std::uint64_t budget = rng() % 3000;
      const auto out = fair_share(budget, d);
      ASSERT_EQ(out.size(), n);
      const std::uint64_t sum = std::accumulate(out.begin(), out.end(), std::uint64_t{0});
      ASSERT_LE(sum, budget);
      ASSERT_EQ(sum, std::min(budget, total_want)) << "budget must be used up when wanted";
      const std::uint64_t equal_share = n ? budget / n : 0;
      std::uint32_t max_alloc_of_unsatisfied = 0, min_alloc_of_unsatisfied = UINT32_MAX;
      for (std::size_t i = 0; i < n; ++i) {
        ASSERT_LE(out[i], want[i]);
        if (want[i] <= equal_share) {
          ASSERT_EQ(out[i], want[i]) << "light user cut, seed " << seed;
        }
        if (out[i] < want[i]) {
          max_alloc_of_unsatisfied = std::max(max_alloc_of_unsatisfied, out[i]);
          min_alloc_of_unsatisfied = std::min(min_alloc_of_unsatisfied, out[i]);
        }
      }
      // Unsatisfied users differ by at most one connection, and nobody
      // satisfied holds more than an unsatisfied user plus that one.
      if (max_alloc_of_unsatisfied > 0) {
        ASSERT_LE(max_alloc_of_unsatisfied - min_alloc_of_unsatisfied, 1u);
      }
      for (std::size_t i = 0; i < n; ++i) {
        if (out[i] == want[i] && min_alloc_of_unsatisfied != UINT32_MAX) {
          ASSERT_LE(out[i], min_alloc_of_unsatisfied + 1);
        }
      }
      ASSERT_EQ(fair_share(budget, d), out) << "deterministic";
    }
  }
}

TEST(LaneCredit, NoCapNoBudgetIsUnlimited) {
  EXPECT_FALSE(lane_credit({.active = 5000}).has_value());
  EXPECT_FALSE(lane_credit({.active = 0, .held = true}).has_value());  // held only with a cap
}

TEST(LaneCredit, CapLeavesRoomUpToTheCapAndTheStep) {
  EXPECT_EQ(lane_credit({.active = 3, .max_connections = 10}), 7u);
  EXPECT_EQ(lane_credit({.active = 10, .max_connections = 10}), 0u);
  EXPECT_EQ(lane_credit({.active = 12, .max_connections = 10}), 0u);  // cap lowered under use
  EXPECT_EQ(lane_credit({.active = 0, .max_connections = 1000}), kMaxLaneCredit);
  EXPECT_EQ(lane_credit({.active = 0, .max_connections = 10, .held = true}), 0u);
}

TEST(LaneCredit, BudgetSharesWhatIsLeftAmongLanes) {
  // 100 budget, 40 used by all, 3 lanes: each may take 20 at most.
  LaneCreditInput in{.active = 5, .global_budget = 100, .budget_used = 40, .fair = 50, .lanes = 3};
  EXPECT_EQ(lane_credit(in), 20u);
  in.fair = 8;  // over its fair allowance soon: only 3 more
  EXPECT_EQ(lane_credit(in), 3u);
  in.fair = 50;
  in.budget_used = 100;
  EXPECT_EQ(lane_credit(in), 0u);
  in.budget_used = 130;  // budget lowered under use
  EXPECT_EQ(lane_credit(in), 0u);
  in = {.active = 0,
        .max_connections = 2,
        .global_budget = 100,
        .budget_used = 0,
        .fair = 100,
        .lanes = 1};
  EXPECT_EQ(lane_credit(in), 2u);  // the cap is the tighter one
}

TEST(LaneCredit, AllLanesSpendingTheirCreditStayWithinTheBudget) {
  for (std::uint64_t budget : {1u, 7u, 100u, 1000u}) {
    for (std::size_t lanes : {1u, 2u, 5u, 64u}) {
      for (std::uint64_t used = 0; used <= budget; used += std::max<std::uint64_t>(1, budget / 7)) {
        LaneCreditInput in{.active = 0,
                           .global_budget = budget,
                           .budget_used = used,
                           .fair = budget,
                           .lanes = lanes};
        auto c = lane_credit(in);
        ASSERT_TRUE(c.has_value());
        EXPECT_LE(used + *c * lanes, std::max(budget, used))
            << budget << " " << lanes << " " << used;
      }
    }
  }
}

std::array<std::byte, 16> addr_of(int family, const char* text) {
  std::array<std::byte, 16> a{};
  EXPECT_EQ(::inet_pton(family == 4 ? AF_INET : AF_INET6, text, a.data()), 1) << text;
  return a;
}

TEST(UniqueIpKey, IPv4IsTheAddress) {
  EXPECT_EQ(unique_ip_key(4, addr_of(4, "198.51.100.7"), 64), "198.51.100.7");
  EXPECT_EQ(unique_ip_key(4, addr_of(4, "10.0.0.1"), 128), "10.0.0.1");
}

TEST(UniqueIpKey, IPv6CountsPerPrefix) {
  const auto a = addr_of(6, "2001:db8:1:2:aaaa::1");
  const auto b = addr_of(6, "2001:db8:1:2:bbbb::2");
  const auto c = addr_of(6, "2001:db8:1:3::1");
  EXPECT_EQ(unique_ip_key(6, a, 64), "2001:db8:1:2::/64");
  EXPECT_EQ(unique_ip_key(6, a, 64), unique_ip_key(6, b, 64)) << "one /64: one client";
  EXPECT_NE(unique_ip_key(6, a, 64), unique_ip_key(6, c, 64));
  EXPECT_EQ(unique_ip_key(6, a, 128), "2001:db8:1:2:aaaa::1") << "128: the whole address";
  EXPECT_NE(unique_ip_key(6, a, 128), unique_ip_key(6, b, 128));
  EXPECT_EQ(unique_ip_key(6, a, 48), "2001:db8:1::/48");
  EXPECT_EQ(unique_ip_key(6, a, 61), "2001:db8:1::/61") << "a prefix inside a byte";
  EXPECT_EQ(unique_ip_key(6, addr_of(6, "2001:db8:1:f::"), 61), "2001:db8:1:8::/61");
  EXPECT_EQ(unique_ip_key(6, a, 1000), "2001:db8:1:2:aaaa::1") << "over 128: clamped";
}

TEST(UniqueIpKey, UnknownFamilyIsOneKey) {
  EXPECT_EQ(unique_ip_key(0, std::array<std::byte, 16>{}, 64), "?");
  EXPECT_EQ(unique_ip_key(5, addr_of(4, "1.2.3.4"), 64), "?");
}

}  // namespace
}  // namespace mtw::supervisor
