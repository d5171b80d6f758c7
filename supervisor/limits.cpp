#include "supervisor/limits.h"

#include <string>

namespace mtw::supervisor {

std::string_view period_name(Period p) noexcept {
  switch (p) {
    case Period::kDaily:
      return "daily";
    case Period::kWeekly:
      return "weekly";
    case Period::kMonthly:
      return "monthly";
    case Period::kLifetime:
      return "lifetime";
  }
  return "unknown";
}

base::Result<Period> parse_period(std::string_view text) {
  for (Period p : {Period::kDaily, Period::kWeekly, Period::kMonthly, Period::kLifetime})
    if (text == period_name(p)) return p;
  return base::fail(
      base::Errc::kBadInput,
      "period must be daily, weekly, monthly or lifetime, not \"" + std::string(text) + "\"");
}

namespace {

template <class T, class U>
void apply_field(const std::optional<std::optional<T>>& patch, std::optional<U>& field) {
  if (!patch) return;
  if (*patch)
    field = static_cast<U>(**patch);
  else
    field.reset();
}

}  // namespace

void apply_limit_patch(const LimitPatch& p, LimitOverrides& o) {
  apply_field(p.rate_up_bps, o.rate_up_bps);
  apply_field(p.rate_down_bps, o.rate_down_bps);
  apply_field(p.quota_bytes, o.quota_bytes);
  apply_field(p.throttle_bps, o.throttle_bps);
  apply_field(p.period, o.period);
  apply_field(p.anchor_day, o.anchor_day);
  apply_field(p.warn_percent, o.warn_percent);
  apply_field(p.max_connections, o.max_connections);
  apply_field(p.max_unique_ips, o.max_unique_ips);
  apply_field(p.idle_teardown_s, o.idle_teardown_s);
  apply_field(p.bandwidth_weight, o.bandwidth_weight);
  apply_field(p.on_demand, o.on_demand);
}

base::Result<void> check_limit_overrides(const LimitOverrides& o) {
  auto bad = [](const char* field, const std::string& why) {
    return base::fail(base::Errc::kBadInput, std::string(field) + ": " + why);
  };
  auto outside = [](const auto& v, IntRange r) {
    return v && (static_cast<std::int64_t>(*v) < r.lo || static_cast<std::int64_t>(*v) > r.hi);
  };
  auto range = [](IntRange r) {
    return "must be " + std::to_string(r.lo) + ".." + std::to_string(r.hi);
  };
  if (outside(o.anchor_day, kAnchorDayRange))
    return bad("limits.anchor_day", range(kAnchorDayRange));
  if (o.anchor_day && o.period == Period::kWeekly && *o.anchor_day > 7)
    return bad("limits.anchor_day", "weekly periods take an ISO weekday 1..7");
  if (outside(o.warn_percent, kWarnPercentRange))
    return bad("limits.warn_percent", range(kWarnPercentRange));
  for (auto [name, v] :
       {std::pair{"limits.rate_up", o.rate_up_bps}, std::pair{"limits.rate_down", o.rate_down_bps},
        std::pair{"limits.throttle_rate", o.throttle_bps}}) {
    if (v && *v != 0 && (*v < kMinLimitRateBps || *v > kMaxLimitRateBps))
      return bad(name, "must be 0 (unlimited) or between 8kbit and 100gbit");
  }
  if (o.throttle_bps && *o.throttle_bps == 0)
    return bad("limits.throttle_rate", "must not be unlimited");
  if (outside(o.max_connections, kMaxConnectionsRange))
    return bad("limits.max_connections", range(kMaxConnectionsRange));
  if (outside(o.max_unique_ips, kMaxUniqueIpsRange))
    return bad("limits.max_unique_ips", range(kMaxUniqueIpsRange));
  if (outside(o.idle_teardown_s, kIdleTeardownRange))
    return bad("limits.idle_teardown_s", range(kIdleTeardownRange));
  if (outside(o.bandwidth_weight, kBandwidthWeightRange))
    return bad("limits.bandwidth_weight", range(kBandwidthWeightRange));
  return {};
}

Limits resolve_limits(const Limits& d, const LimitOverrides& u) {
  Limits r = d;
  if (u.rate_up_bps) r.rate_up_bps = *u.rate_up_bps;
  if (u.rate_down_bps) r.rate_down_bps = *u.rate_down_bps;
  if (u.quota_bytes) r.quota_bytes = *u.quota_bytes;
  if (u.period) r.period = *u.period;
  if (u.anchor_day) r.anchor_day = *u.anchor_day;
  if (u.throttle_bps) r.throttle_bps = *u.throttle_bps;
  if (u.warn_percent) r.warn_percent = *u.warn_percent;
  if (u.max_connections) r.max_connections = *u.max_connections;
  if (u.max_unique_ips) r.max_unique_ips = *u.max_unique_ips;
  if (u.on_demand) r.on_demand = *u.on_demand;
  if (u.idle_teardown_s) r.idle_teardown_s = *u.idle_teardown_s;
  if (u.bandwidth_weight) r.bandwidth_weight = *u.bandwidth_weight;
  return r;
}

}  // namespace mtw::supervisor
