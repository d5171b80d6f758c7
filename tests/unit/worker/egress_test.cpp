#include "worker/egress.h"

#include <gtest/gtest.h>

#include <cmath>

namespace mtw::worker {
namespace {

using namespace std::chrono_literals;
using T = Egress::TimePoint;

proto::EgressSpec spec(std::vector<std::uint32_t> weights, bool fallback = false) {
  proto::EgressSpec s;
  s.policy.failures = 2;
  s.policy.retry_min_ms = 1'000;
  s.policy.retry_max_ms = 4'000;
  s.policy.fallback_direct = fallback;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    proto::UpstreamSpec u;
    u.name = "u" + std::to_string(i);
    u.type = proto::UpstreamType::kSocks5;
    u.address = {"127.0.0.1", static_cast<std::uint16_t>(1080 + i)};
    u.weight = weights[i];
    s.upstreams.push_back(u);
  }
  return s;
}

TEST(Egress, NoUpstreamsMeansDirectOnly) {
  Egress e(proto::EgressSpec{}, 1);
  EXPECT_TRUE(e.direct_only());
  EXPECT_TRUE(e.plan(T{}).empty());
}

TEST(Egress, PlanListsEveryUpUpstreamOnce) {
  Egress e(spec({1, 1, 1}), 7);
  auto p = e.plan(T{});
  std::sort(p.begin(), p.end());
  EXPECT_EQ(p, (std::vector<std::size_t>{0, 1, 2}));
}

TEST(Egress, FirstPickFollowsWeightsWithinStatisticalBounds) {
  Egress e(spec({3, 1}), 42);
  const int n = 20'000;
  int first0 = 0;
  for (int i = 0; i < n; ++i) first0 += e.plan(T{}).front() == 0 ? 1 : 0;
  // Expected 0.75 n; 5 standard deviations (sigma = sqrt(n p q) ~ 61) is ~306.
  EXPECT_NEAR(first0, 0.75 * n, 5 * std::sqrt(n * 0.75 * 0.25));
}

TEST(Egress, MarkedDownAfterConfiguredConsecutiveFailures) {
  Egress e(spec({1, 1}), 1);
  const T t0{};
  EXPECT_FALSE(e.on_failure(0, t0));
  EXPECT_TRUE(e.is_up(0));
  EXPECT_TRUE(e.on_failure(0, t0));
  EXPECT_FALSE(e.is_up(0));
  EXPECT_EQ(e.counters(0).marked_down, 1u);
  EXPECT_EQ(e.plan(t0), (std::vector<std::size_t>{1}));
}

TEST(Egress, SuccessResetsTheFailureRun) {
  Egress e(spec({1}), 1);
  e.on_failure(0, T{});
  e.on_success(0);
  EXPECT_FALSE(e.on_failure(0, T{}));
  EXPECT_TRUE(e.is_up(0));
}

TEST(Egress, DownUpstreamIsRetriedAfterBackoffThatDoubles) {
  Egress e(spec({1, 1}), 1);
  const T t0{};
  e.on_failure(0, t0);
  e.on_failure(0, t0);  // down, retry at +1 s
  EXPECT_EQ(e.plan(t0 + 999ms), (std::vector<std::size_t>{1}));
  EXPECT_EQ(e.plan(t0 + 1s).back(), 0u);  // half-open: after the up ones
  e.on_failure(0, t0 + 1s);               // failed retry: +2 s
  EXPECT_EQ(*e.retry_at(0), t0 + 3s);
  e.on_failure(0, t0 + 3s);  // +4 s
  e.on_failure(0, t0 + 7s);  // capped at retry_max_ms = 4 s
  EXPECT_EQ(*e.retry_at(0), t0 + 11s);
  e.on_success(0);
  EXPECT_TRUE(e.is_up(0));
  EXPECT_FALSE(e.retry_at(0).has_value());
}

TEST(Egress, AllDownFailsUnlessFallbackToDirect) {
  Egress strict(spec({1}), 1);
  strict.on_failure(0, T{});
  strict.on_failure(0, T{});
  EXPECT_TRUE(strict.plan(T{}).empty());
  Egress lenient(spec({1}, true), 1);
  EXPECT_EQ(lenient.plan(T{}), (std::vector<std::size_t>{0}));  // up: no direct
  lenient.on_failure(0, T{});
  lenient.on_failure(0, T{});
  EXPECT_EQ(lenient.plan(T{}), (std::vector<std::size_t>{Egress::kDirect}));
  EXPECT_EQ(lenient.plan(T{} + 1s), (std::vector<std::size_t>{0, Egress::kDirect}));
}

TEST(Egress, HealthChecksMoveStateButNotConnectionCounts) {
  Egress e(spec({1}), 1);
  e.on_health(0, false, T{});
  e.on_health(0, false, T{});
  EXPECT_FALSE(e.is_up(0));
  e.on_health(0, true, T{});
  EXPECT_TRUE(e.is_up(0));
  EXPECT_EQ(e.counters(0).connects, 0u);
  EXPECT_EQ(e.counters(0).health_ok, 1u);
  EXPECT_EQ(e.counters(0).health_failed, 2u);
  e.add_bytes(0, 10, 20);
  EXPECT_EQ(e.summary(),
            "name=u0 up=1 connects=0 failures=2 bytes_up=10 bytes_down=20 health_ok=1 "
            "health_failed=2 marked_down=1");
}

TEST(Egress, ReplaceKeepsCountersAndHealthOfAnUnchangedUpstreamByName) {
  Egress e(spec({1, 1}), 3);
  e.on_success(1);
  e.add_bytes(1, 10, 20);
  ASSERT_FALSE(e.on_failure(1, T{}));
  ASSERT_TRUE(e.on_failure(1, T{}));  // u1 down (failures = 2)
  // u1 moves to index 0, u0 is dropped, u9 is new.
  proto::EgressSpec next = spec({1, 1});
  next.upstreams[0] = spec({1, 1}).upstreams[1];
  next.upstreams[1].name = "u9";
  e.replace(next);
  ASSERT_EQ(e.find("u1"), std::optional<std::size_t>(0));
  EXPECT_EQ(e.find("u0"), std::nullopt);
  EXPECT_FALSE(e.is_up(0));  // same definition: still down
  EXPECT_EQ(e.counters(0).connects, 1u);
  EXPECT_EQ(e.counters(0).bytes_down, 20u);
  EXPECT_EQ(e.counters(0).marked_down, 1u);
  EXPECT_TRUE(e.is_up(1));
  EXPECT_EQ(e.counters(1).connects, 0u);
}

TEST(Egress, ReplaceWithANewDefinitionStartsUpButKeepsTotals) {
  Egress e(spec({1}), 3);
  e.on_success(0);
  ASSERT_FALSE(e.on_failure(0, T{}));
  ASSERT_TRUE(e.on_failure(0, T{}));
  proto::EgressSpec next = spec({1});
  next.upstreams[0].address.port = 2080;  // moved: the old health says nothing
  e.replace(next);
  EXPECT_TRUE(e.is_up(0));
  EXPECT_EQ(e.counters(0).connects, 1u);
  EXPECT_EQ(e.counters(0).failures, 2u);
  e.replace(proto::EgressSpec{});
  EXPECT_TRUE(e.direct_only());
  EXPECT_TRUE(e.plan(T{}).empty());
}

}  // namespace
}  // namespace mtw::worker
