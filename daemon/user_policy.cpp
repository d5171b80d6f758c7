// One running user's policy, applied (user_policy.h).
#include "daemon/user_policy.h"

#include <string>

#include "base/log.h"
#include "supervisor/bandwidth.h"

namespace mtw::daemon {
namespace {

using namespace mtw::supervisor;

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("supervisor");
  return l;
}

}  // namespace

netns::ShaperRates shaper_rates(const EffectiveRate& eff) {
  netns::ShaperRates r;
  r.upload.bits_per_sec = shaper_bps(eff.up_bps);
  r.download.bits_per_sec = shaper_bps(eff.down_bps);
  return r;
}

std::optional<netns::ShaperRates> LiveCellOps::rates(const UserRt& u) const {
  if (!u.cell) return std::nullopt;
  return u.cell->rates();
}

base::Result<void> LiveCellOps::apply_rates(UserRt& u, const netns::ShaperRates& r) {
  if (!u.cell) return base::fail(base::Errc::kNotFound, "no cell");
  return u.cell->set_rates(r);
}

void UserPolicy::apply(UserRt& u, UnixSeconds now) const {
  if (const PeriodCheck pc = check_period(u.period, u.limits, now); pc.changed) {
    u.period = pc.period;
    auto usage = usage_of_(u.user.id, u.period.start);
    u.period_usage = usage ? *usage : Usage{};
    if (pc.rolled_over) event_(u.user.id, "usage_reset", "period");
  }
  const QuotaStatus qs = quota_status(u.limits, u.period_usage.total(), now);
  if (qs.state != u.quota) {
    const auto detail =
        "used=" + std::to_string(qs.used_bytes) + " quota=" + std::to_string(qs.quota_bytes);
    if (qs.state == QuotaState::kThrottled)
      event_(u.user.id, "quota_throttled", detail);
    else if (qs.state == QuotaState::kWarned && u.quota == QuotaState::kNormal)
      event_(u.user.id, "quota_warned", detail);
    else if (u.quota == QuotaState::kThrottled)
      event_(u.user.id, "quota_unthrottled", detail);
    u.quota = qs.state;
  }
  const auto window = std::chrono::seconds(cfg_.connections.unique_ip_window_s);
  const auto cut = Clock::now() - window;
  std::erase_if(u.ips, [&](const auto& kv) { return kv.second < cut; });
  u.unique_ips = static_cast<std::uint32_t>(u.ips.size());
  const bool over_ips = u.limits.max_unique_ips != 0 && u.unique_ips > u.limits.max_unique_ips;
  if (over_ips != u.unique_ip_event) {
    event_(u.user.id, over_ips ? "unique_ips_throttled" : "unique_ips_unthrottled",
           std::to_string(u.unique_ips) + " unique IPs, limit " +
               std::to_string(u.limits.max_unique_ips));
    u.unique_ip_event = over_ips;
  }
  EffectiveRate eff = effective_rate(u.limits, u.quota, u.unique_ips);
  // The host budget's share (bandwidth_share.h) when it is the lower.
  const bool shared =
      (u.share_up_bps != 0 && within_share(eff.up_bps, u.share_up_bps) != eff.up_bps) ||
      (u.share_down_bps != 0 && within_share(eff.down_bps, u.share_down_bps) != eff.down_bps);
  eff.up_bps = within_share(eff.up_bps, u.share_up_bps);
  eff.down_bps = within_share(eff.down_bps, u.share_down_bps);
  const netns::ShaperRates want = shaper_rates(eff);
  if (const auto have = cells_.rates(u);
      have && (want.upload.bits_per_sec != have->upload.bits_per_sec ||
               want.download.bits_per_sec != have->download.bits_per_sec)) {
    if (auto res = cells_.apply_rates(u, want); !res) {
      log()->error("rate change failed user={} error={}", u.user.name, res.error().to_string());
    } else {
      log()->info("rate changed user={} up_bps={} down_bps={} reason=\"{}\"{}", u.user.name,
                  eff.up_bps, eff.down_bps, eff.reason_text, shared ? " share=host_budget" : "");
    }
  }
  u.rate = eff;
}

}  // namespace mtw::daemon
