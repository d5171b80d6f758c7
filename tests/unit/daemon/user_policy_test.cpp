// One running user's policy, applied through the CellOps seam: what reaches
// the shapers and the event log, rootless (a fake records the shaper calls).
#include "daemon/user_policy.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "daemon/bandwidth_share.h"
#include "supervisor/user_change.h"

namespace mtw::daemon {
namespace {

using supervisor::UnixSeconds;

constexpr UnixSeconds kNow = 1'780'000'000;  // 2026-05-28

// Shapers as a table: every user "has a cell" whose rates start at the
// ceiling (what an unlimited user's cell is made with); each apply is
// recorded.
class FakeCells final : public CellOps {
 public:
  std::optional<netns::ShaperRates> rates(const UserRt& u) const override {
    auto it = rates_.find(u.user.id);
    if (it == rates_.end()) return std::nullopt;
    return it->second;
  }
  base::Result<void> apply_rates(UserRt& u, const netns::ShaperRates& r) override {
    applied.emplace_back(u.user.id, r.upload.bits_per_sec, r.download.bits_per_sec);
    if (fail) return base::fail(base::Errc::kNetlink, "tc refused");
    rates_[u.user.id] = r;
    return {};
  }
  void give_cell(supervisor::UserId id) {
    netns::ShaperRates r;
    r.upload.bits_per_sec = netns::kMaxRateBps;
    r.download.bits_per_sec = netns::kMaxRateBps;
    rates_[id] = r;
  }
  std::vector<std::tuple<supervisor::UserId, std::uint64_t, std::uint64_t>> applied;
  bool fail = false;

 private:
  std::map<supervisor::UserId, netns::ShaperRates> rates_;
};

struct Recorded {
  supervisor::UserId user;
  std::string kind;
  std::string detail;
};

class UserPolicyTest : public ::testing::Test {
 protected:
  UserPolicyTest()
      : policy_(
            cfg_, cells_,
            [this](supervisor::UserId id, UnixSeconds start) -> base::Result<supervisor::Usage> {
              usage_reads_.emplace_back(id, start);
              return stored_usage_;
            },
            [this](supervisor::UserId id, std::string_view kind, std::string_view detail) {
              events_.push_back({id, std::string(kind), std::string(detail)});
            }) {}

  UserRt& add(supervisor::UserId id, const std::string& name,
              const supervisor::LimitOverrides& o = {}) {
    supervisor::StoredUser s;
    s.id = id;
    s.name = name;
    s.overrides = o;
    UserRt& u = users_.add(s, {});
    u.limits = supervisor::resolve_limits(cfg_.defaults, o);
    u.period = supervisor::period_bounds(u.limits.period, u.limits.anchor_day, kNow);
    cells_.give_cell(id);
    return u;
  }

  supervisor::Config cfg_;
  FakeCells cells_;
  supervisor::Usage stored_usage_;
  std::vector<std::pair<supervisor::UserId, UnixSeconds>> usage_reads_;
  std::vector<Recorded> events_;
  UserRegistry users_;
  UserPolicy policy_;
};

TEST_F(UserPolicyTest, ARateDownChangeReshapesThatUserOnceAndNoOtherAndLeavesTheGateTable) {
  UserRt& a = add(1, "alice");
  UserRt& b = add(2, "bob");
  UserRt& c = add(3, "carol");
  for (UserRt* u : {&a, &b, &c}) policy_.apply(*u, kNow);
  ASSERT_TRUE(cells_.applied.empty());  // unlimited users: the ceiling they have already

  // PATCH bob limits.rate_down = 2mbit: the stored definition changes.
  supervisor::StoredUser next = b.user;
  next.overrides.rate_down_bps = 2'000'000;
  const supervisor::Limits limits = supervisor::resolve_limits(cfg_.defaults, next.overrides);
  const supervisor::UserChange change =
      supervisor::classify_change(&b.user, b.limits, next, limits, kNow);
  EXPECT_TRUE(change.limits);
  EXPECT_FALSE(change.gate_table);  // the gate's table is not resent
  EXPECT_FALSE(change.reload_secrets);
  users_.set_definition(b, next);
  b.limits = limits;
  policy_.apply(b, kNow);

  ASSERT_EQ(cells_.applied.size(), 1u);
  EXPECT_EQ(std::get<0>(cells_.applied[0]), 2);
  EXPECT_EQ(std::get<1>(cells_.applied[0]), netns::kMaxRateBps);  // upload unshaped
  EXPECT_EQ(std::get<2>(cells_.applied[0]), 2'000'000u);
  EXPECT_EQ(b.rate.down_bps, 2'000'000u);
  EXPECT_TRUE(events_.empty());

  // The same policy again (the next sweep): nothing reaches the shaper.
  for (UserRt* u : {&a, &b, &c}) policy_.apply(*u, kNow);
  EXPECT_EQ(cells_.applied.size(), 1u);
  EXPECT_EQ(a.rate.down_bps, 0u);
  EXPECT_EQ(c.rate.down_bps, 0u);
}

TEST_F(UserPolicyTest, AUsedUpQuotaThrottlesOnceWithOneEventAndReleasesAtTheNextPeriod) {
  supervisor::LimitOverrides o;
  o.quota_bytes = 1000;
  o.throttle_bps = 64'000;
  o.period = supervisor::Period::kDaily;
  UserRt& a = add(1, "alice", o);
  UserRt& b = add(2, "bob");
  a.period_usage.bytes_down = 900;  // 90 %: warned
  policy_.apply(a, kNow);
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0].kind, "quota_warned");
  EXPECT_TRUE(cells_.applied.empty());

  a.period_usage.bytes_up = 100;  // 1000 of 1000
  policy_.apply(a, kNow);
  policy_.apply(b, kNow);
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_EQ(events_[1].kind, "quota_throttled");
  EXPECT_EQ(events_[1].detail, "used=1000 quota=1000");
  ASSERT_EQ(cells_.applied.size(), 1u);
  EXPECT_EQ(cells_.applied[0],
            std::make_tuple(supervisor::UserId{1}, std::uint64_t{64'000}, std::uint64_t{64'000}));
  EXPECT_TRUE(a.rate.reasons.quota);

  policy_.apply(a, kNow + 60);  // still throttled: no second event, no second change
  EXPECT_EQ(events_.size(), 2u);
  EXPECT_EQ(cells_.applied.size(), 1u);

  // The next day: the period rolls over, its usage is read back (none).
  const UnixSeconds tomorrow = a.period.end + 1;
  policy_.apply(a, tomorrow);
  ASSERT_EQ(usage_reads_.size(), 1u);
  EXPECT_EQ(usage_reads_[0].first, 1);
  EXPECT_EQ(usage_reads_[0].second, a.period.start);
  ASSERT_EQ(events_.size(), 4u);
  EXPECT_EQ(events_[2].kind, "usage_reset");
  EXPECT_EQ(events_[3].kind, "quota_unthrottled");
  ASSERT_EQ(cells_.applied.size(), 2u);
  EXPECT_EQ(std::get<2>(cells_.applied[1]), netns::kMaxRateBps);
  EXPECT_FALSE(a.rate.reasons.any());
}

TEST_F(UserPolicyTest, TooManyUniqueIpsThrottlesUntilTheyAgeOut) {
  cfg_.connections.unique_ip_window_s = 60;
  supervisor::LimitOverrides o;
  o.max_unique_ips = 1;
  o.throttle_bps = 64'000;
  UserRt& a = add(1, "alice", o);
  a.ips["192.0.2.1"] = Clock::now();
  a.ips["192.0.2.2"] = Clock::now();
  policy_.apply(a, kNow);
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0].kind, "unique_ips_throttled");
  EXPECT_EQ(a.unique_ips, 2u);
  ASSERT_EQ(cells_.applied.size(), 1u);
  EXPECT_EQ(std::get<2>(cells_.applied[0]), 64'000u);

  a.ips["192.0.2.2"] = Clock::now() - std::chrono::seconds(61);  // out of the window
  policy_.apply(a, kNow);
  EXPECT_EQ(a.unique_ips, 1u);
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_EQ(events_[1].kind, "unique_ips_unthrottled");
  ASSERT_EQ(cells_.applied.size(), 2u);
  EXPECT_EQ(std::get<2>(cells_.applied[1]), netns::kMaxRateBps);
}

TEST_F(UserPolicyTest, AUserWithoutACellGetsItsRateRecordedButNoShaperCall) {
  supervisor::LimitOverrides o;
  o.rate_down_bps = 2'000'000;
  supervisor::StoredUser s;
  s.id = 7;
  s.name = "idle";
  s.overrides = o;
  UserRt& u = users_.add(s, {});  // on-demand and idle: no cell yet
  u.limits = supervisor::resolve_limits(cfg_.defaults, o);
  u.period = supervisor::period_bounds(u.limits.period, u.limits.anchor_day, kNow);
  policy_.apply(u, kNow);
  EXPECT_TRUE(cells_.applied.empty());
  EXPECT_EQ(u.rate.down_bps, 2'000'000u);  // the cell is made with it (start_user)
}

TEST_F(UserPolicyTest, AShaperThatRefusesIsTriedAgainAtTheNextApply) {
  UserRt& a = add(1, "alice");
  supervisor::StoredUser next = a.user;
  next.overrides.rate_up_bps = 1'000'000;
  users_.set_definition(a, next);
  a.limits = supervisor::resolve_limits(cfg_.defaults, next.overrides);
  cells_.fail = true;
  policy_.apply(a, kNow);
  EXPECT_EQ(cells_.applied.size(), 1u);
  cells_.fail = false;
  policy_.apply(a, kNow);
  ASSERT_EQ(cells_.applied.size(), 2u);
  EXPECT_EQ(std::get<1>(cells_.applied[1]), 1'000'000u);
  policy_.apply(a, kNow);
  EXPECT_EQ(cells_.applied.size(), 2u);
}

// The host budget: a sweep's measured rates in, each user's shaper out.
class BandwidthShareTest : public UserPolicyTest {
 protected:
  // One sweep: the rates measured over it, then the division and the policy.
  void sweep(const std::vector<std::pair<UserRt*, std::uint64_t>>& measured_down) {
    for (auto& [u, bps] : measured_down) u->rate_bps_down = bps;
    share_.divide();
    for (auto& [id, u] : users_) policy_.apply(*u, kNow);
  }
  BandwidthShare share_{cfg_, users_, cells_};
};

TEST_F(BandwidthShareTest, WithoutABudgetNobodyIsShaped) {
  UserRt& a = add(1, "alice");
  sweep({{&a, 500'000'000}});
  EXPECT_EQ(a.share_down_bps, 0u);
  EXPECT_TRUE(cells_.applied.empty());
  EXPECT_EQ(share_.level_down_bps(), 0u);
}

TEST_F(BandwidthShareTest, TwoHeavyAndOneLightUserSplitTheBudgetMaxMinFair) {
  cfg_.bandwidth.down_bps = 12'000'000;
  UserRt& a = add(1, "alice");
  UserRt& b = add(2, "bob");
  UserRt& c = add(3, "carol");
  // Unshaped so far: alice and bob would take 20 Mbit/s each, carol 1.
  sweep({{&a, 20'000'000}, {&b, 20'000'000}, {&c, 1'000'000}});
  EXPECT_EQ(a.rate.down_bps, 5'500'000u);
  EXPECT_EQ(b.rate.down_bps, 5'500'000u);
  EXPECT_EQ(c.rate.down_bps, 5'500'000u);  // the level: carol may grow at once
  EXPECT_EQ(share_.level_down_bps(), 5'500'000u);
  EXPECT_EQ(a.rate.up_bps, 0u);  // no upload budget: upload stays unshaped
  // Next sweep: the heavy two are held at their shapers' rate, carol is not.
  sweep({{&a, 5'400'000}, {&b, 5'450'000}, {&c, 1'000'000}});
  EXPECT_EQ(a.rate.down_bps, 5'500'000u);
  EXPECT_EQ(c.rate.down_bps, 5'500'000u);
  // carol stops: what she used goes to the others, one sweep later (a
  // demand is the larger of the last two sweeps' rates).
  sweep({{&a, 5'400'000}, {&b, 5'450'000}, {&c, 0}});
  EXPECT_EQ(a.rate.down_bps, 5'500'000u);
  sweep({{&a, 5'400'000}, {&b, 5'450'000}, {&c, 0}});
  EXPECT_EQ(a.rate.down_bps, 6'000'000u);
  EXPECT_EQ(b.rate.down_bps, 6'000'000u);
}

TEST_F(BandwidthShareTest, OneSweepCountedLowDoesNotHandTheShareAway) {
  cfg_.bandwidth.down_bps = 12'000'000;
  UserRt& a = add(1, "alice");
  UserRt& b = add(2, "bob");
  sweep({{&a, 20'000'000}, {&b, 20'000'000}});
  EXPECT_EQ(a.rate.down_bps, 6'000'000u);
  // One GSO packet less in bob's count this sweep: still held, no change.
  sweep({{&a, 6'100'000}, {&b, 4'900'000}});
  EXPECT_EQ(a.rate.down_bps, 6'000'000u);
  EXPECT_EQ(b.rate.down_bps, 6'000'000u);
}

TEST_F(BandwidthShareTest, AUsersOwnLowerRateWinsAndTheRestGoesToTheOthers) {
  cfg_.bandwidth.down_bps = 10'000'000;
  supervisor::LimitOverrides slow;
  slow.rate_down_bps = 2'000'000;
  UserRt& a = add(1, "alice");
  UserRt& b = add(2, "bob", slow);
  policy_.apply(b, kNow);  // bob's own limit is in force before any budget
  sweep({{&a, 30'000'000}, {&b, 2'000'000}});
  EXPECT_EQ(b.rate.down_bps, 2'000'000u);
  EXPECT_EQ(a.rate.down_bps, 8'000'000u);
  EXPECT_EQ(b.share_down_bps, 2'000'000u);
}

TEST_F(BandwidthShareTest, ABudgetRemovedOnReloadUnshapesAtTheNextSweep) {
  cfg_.bandwidth.down_bps = 4'000'000;
  UserRt& a = add(1, "alice");
  UserRt& b = add(2, "bob");
  sweep({{&a, 9'000'000}, {&b, 9'000'000}});
  EXPECT_EQ(a.rate.down_bps, 2'000'000u);
  cfg_.bandwidth.down_bps = 0;
  sweep({{&a, 2'000'000}, {&b, 2'000'000}});
  EXPECT_EQ(a.rate.down_bps, 0u);
  EXPECT_EQ(std::get<2>(cells_.applied.back()), netns::kMaxRateBps);
}

TEST_F(BandwidthShareTest, HeavyUsersShareInProportionToTheirWeights) {
  cfg_.bandwidth.down_bps = 48'000'000;
  cfg_.bandwidth.up_bps = 8'000'000;
  supervisor::LimitOverrides three;
  three.bandwidth_weight = 3;
  UserRt& a = add(1, "alice", three);
  UserRt& b = add(2, "bob");  // [defaults]: weight 1
  sweep({{&a, 90'000'000}, {&b, 90'000'000}});
  EXPECT_EQ(a.rate.down_bps, 36'000'000u);
  EXPECT_EQ(b.rate.down_bps, 12'000'000u);
  EXPECT_EQ(share_.level_down_bps(), 12'000'000u);  // per unit of weight
  // Both directions take the weight.
  a.rate_bps_up = b.rate_bps_up = 20'000'000;
  sweep({{&a, 35'900'000}, {&b, 11'900'000}});
  EXPECT_EQ(a.rate.up_bps, 6'000'000u);
  EXPECT_EQ(b.rate.up_bps, 2'000'000u);
  EXPECT_EQ(a.rate.down_bps, 36'000'000u);
  // A weight changed in [defaults] (a reload): bob now weighs 2, alice
  // keeps her own 3; the next division takes it.
  cfg_.defaults.bandwidth_weight = 2;
  b.limits = supervisor::resolve_limits(cfg_.defaults, b.user.overrides);
  sweep({{&a, 35'900'000}, {&b, 11'900'000}});
  EXPECT_EQ(a.rate.down_bps, 28'800'000u);
  EXPECT_EQ(b.rate.down_bps, 19'200'000u);
}

TEST_F(BandwidthShareTest, ALightUserUnderTheWeightedLevelKeepsWhatItNeeds) {
  cfg_.bandwidth.down_bps = 48'000'000;
  supervisor::LimitOverrides three;
  three.bandwidth_weight = 3;
  UserRt& a = add(1, "alice", three);
  UserRt& b = add(2, "bob");
  UserRt& c = add(3, "carol");  // light: 4 Mbit/s, under 48/5 per unit of weight
  sweep({{&a, 90'000'000}, {&b, 90'000'000}, {&c, 4'000'000}});
  // carol keeps her 4; alice and bob split the other 44 3:1.
  EXPECT_EQ(share_.level_down_bps(), 11'000'000u);
  EXPECT_EQ(a.rate.down_bps, 33'000'000u);
  EXPECT_EQ(b.rate.down_bps, 11'000'000u);
  EXPECT_EQ(c.rate.down_bps, 11'000'000u);  // the level: carol may grow at once
}

TEST_F(BandwidthShareTest, AUserWithoutACellTakesNoShare) {
  cfg_.bandwidth.down_bps = 4'000'000;
  UserRt& a = add(1, "alice");
  supervisor::StoredUser s;
  s.id = 2;
  s.name = "idle";
  UserRt& idle = users_.add(s, {});  // no cell
  sweep({{&a, 9'000'000}});
  EXPECT_EQ(idle.share_down_bps, 0u);
  EXPECT_EQ(a.rate.down_bps, 4'000'000u);
}

}  // namespace
}  // namespace mtw::daemon
