#include "supervisor/limits.h"

#include <gtest/gtest.h>

namespace mtw::supervisor {
namespace {

TEST(ApplyLimitPatch, SetsOverridesDropsThoseSetToDefaultAndLeavesTheRest) {
  LimitOverrides o;
  o.rate_up_bps = 1'000'000;
  o.quota_bytes = 5;
  LimitPatch p;
  p.rate_down_bps = std::optional<std::uint64_t>(2'000'000);
  p.quota_bytes = std::optional<std::uint64_t>();  // null: back to [defaults]
  apply_limit_patch(p, o);
  EXPECT_EQ(o.rate_down_bps, 2'000'000u);
  EXPECT_FALSE(o.quota_bytes);
  EXPECT_EQ(o.rate_up_bps, 1'000'000u);  // not in the patch: unchanged
}

TEST(CheckLimitOverrides, AcceptsEmptyAndBoundaryValues) {
  EXPECT_TRUE(check_limit_overrides({}));
  LimitOverrides o;
  o.rate_up_bps = kMinLimitRateBps;
  o.rate_down_bps = 0;  // unlimited
  o.throttle_bps = kMaxLimitRateBps;
  o.anchor_day = 31;
  o.warn_percent = 99;
  o.max_connections = 1'000'000;
  o.idle_teardown_s = 10;
  o.bandwidth_weight = 1'000;
  EXPECT_TRUE(check_limit_overrides(o));
}

TEST(CheckLimitOverrides, NamesTheFieldOutOfBounds) {
  auto field_of = [](LimitOverrides o) {
    auto r = check_limit_overrides(o);
    EXPECT_FALSE(r);
    if (r) return std::string();
    EXPECT_EQ(r.error().code, base::Errc::kBadInput);
    return r.error().context.substr(0, r.error().context.find(':'));
  };
  LimitOverrides o;
  o.anchor_day = 0;
  EXPECT_EQ(field_of(o), "limits.anchor_day");
  o = {};
  o.period = Period::kWeekly;
  o.anchor_day = 8;
  EXPECT_EQ(field_of(o), "limits.anchor_day");
  o = {};
  o.warn_percent = 100;
  EXPECT_EQ(field_of(o), "limits.warn_percent");
  o = {};
  o.rate_down_bps = kMinLimitRateBps - 1;
  EXPECT_EQ(field_of(o), "limits.rate_down");
  o = {};
  o.rate_up_bps = kMaxLimitRateBps + 1;
  EXPECT_EQ(field_of(o), "limits.rate_up");
  o = {};
  o.throttle_bps = 0;
  EXPECT_EQ(field_of(o), "limits.throttle_rate");
  o = {};
  o.max_unique_ips = 1'000'001;
  EXPECT_EQ(field_of(o), "limits.max_unique_ips");
  o = {};
  o.idle_teardown_s = 9;
  EXPECT_EQ(field_of(o), "limits.idle_teardown_s");
  for (std::uint32_t w : {0u, 1'001u}) {
    o = {};
    o.bandwidth_weight = w;
    EXPECT_EQ(field_of(o), "limits.bandwidth_weight") << w;
  }
}

TEST(ResolveLimits, BandwidthWeightInheritsUnlessOverridden) {
  Limits d;
  EXPECT_EQ(d.bandwidth_weight, 1u);
  d.bandwidth_weight = 4;
  EXPECT_EQ(resolve_limits(d, {}).bandwidth_weight, 4u);
  LimitOverrides o;
  o.bandwidth_weight = 3;
  EXPECT_EQ(resolve_limits(d, o).bandwidth_weight, 3u);
  LimitPatch p;
  p.bandwidth_weight = std::optional<std::uint32_t>();  // null: back to [defaults]
  apply_limit_patch(p, o);
  EXPECT_EQ(resolve_limits(d, o).bandwidth_weight, 4u);
}

}  // namespace
}  // namespace mtw::supervisor
