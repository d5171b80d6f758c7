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
  return r;
}

}  // namespace mtw::supervisor
