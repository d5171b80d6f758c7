#include "daemon/bandwidth_share.h"

#include <algorithm>
#include <vector>

#include "base/log.h"
#include "supervisor/bandwidth.h"
#include "supervisor/policy.h"

namespace mtw::daemon {
namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("supervisor");
  return l;
}

}  // namespace

void BandwidthShare::divide() {
  struct Running {
    UserRt* user;
    netns::ShaperRates shaper;  // the rates it had during the sweep
  };
  std::vector<Running> running;  // users with a cell, so a shaper (a starting one too)
  for (auto& [id, u] : users_) {
    u->share_up_bps = u->share_down_bps = 0;
    if (auto r = cells_.rates(*u)) running.push_back({u.get(), *r});
  }
  struct Direction {
    const char* name;
    std::uint64_t budget;
    std::uint64_t UserRt::*measured;
    std::uint64_t UserRt::*prev;
    netns::Rate netns::ShaperRates::*shaper;
    std::uint64_t supervisor::EffectiveRate::*own;
    std::uint64_t UserRt::*share;
    std::uint64_t& level;
  };
  const Direction dirs[] = {
      {"up", cfg_.bandwidth.up_bps, &UserRt::rate_bps_up, &UserRt::prev_rate_bps_up,
       &netns::ShaperRates::upload, &supervisor::EffectiveRate::up_bps, &UserRt::share_up_bps,
       level_up_},
      {"down", cfg_.bandwidth.down_bps, &UserRt::rate_bps_down, &UserRt::prev_rate_bps_down,
       &netns::ShaperRates::download, &supervisor::EffectiveRate::down_bps, &UserRt::share_down_bps,
       level_down_},
  };
  std::vector<supervisor::BandwidthDemand> demands(running.size());
  for (const auto& d : dirs) {
    const std::uint64_t was = d.level;
    d.level = 0;
    if (d.budget == 0) continue;
    for (std::size_t i = 0; i < running.size(); ++i) {
      const UserRt& u = *running[i].user;
      const std::uint64_t shaped = (running[i].shaper.*d.shaper).bits_per_sec;
      // Its own rate, without the share: the most it may have.
      const auto own = supervisor::effective_rate(u.limits, u.quota, u.unique_ips);
      // The larger of the last two sweeps' rates: one sweep's count moves in
      // whole GSO packets (up to 64 KiB: a quarter of what 4 Mbit/s moves in
      // 500 ms), and a held user counted once below kSaturated of its rate
      // would hand its share to the others for a sweep and take it back the
      // next. A user that stops is released one sweep later.
      const std::uint64_t demand = std::max(u.*d.measured, u.*d.prev);
      demands[i] = {demand, shaped >= netns::kMaxRateBps ? 0 : shaped, own.*d.own,
                    u.limits.bandwidth_weight};
    }
    const auto split = supervisor::split_budget(d.budget, demands);
    for (std::size_t i = 0; i < running.size(); ++i) running[i].user->*d.share = split.rate_bps[i];
    d.level = split.level_bps;
    if ((was == 0) != (d.level == 0))
      log()->info("host bandwidth budget {} direction={} budget_bps={} level_bps={}",
                  d.level ? "divided" : "covers every user", d.name, d.budget, d.level);
  }
  for (auto& [id, u] : users_) {
    u->prev_rate_bps_up = u->rate_bps_up;
    u->prev_rate_bps_down = u->rate_bps_down;
  }
}

}  // namespace mtw::daemon
