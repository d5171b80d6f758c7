#include "supervisor/bandwidth.h"

#include <algorithm>
#include <limits>
#include <numeric>

namespace mtw::supervisor {
namespace {

constexpr std::uint64_t kUnbounded = std::numeric_limits<std::uint64_t>::max();

// What the user would use given any amount: measured, or unbounded when it
// was held at its shaper's rate; never above its own cap.
std::uint64_t wanted(const BandwidthDemand& d) {
  const bool held = d.shaped_bps != 0 && static_cast<double>(d.measured_bps) >=
                                             kSaturated * static_cast<double>(d.shaped_bps);
  const std::uint64_t w = held ? kUnbounded : d.measured_bps;
  return d.cap_bps != 0 ? std::min(w, d.cap_bps) : w;
}

std::uint32_t weight_of(const BandwidthDemand& d) {
  return std::clamp<std::uint32_t>(d.weight, 1, 1000);
}

}  // namespace

BandwidthSplit split_budget(std::uint64_t budget_bps, std::span<const BandwidthDemand> users) {
  BandwidthSplit out;
  out.rate_bps.resize(users.size());
  if (budget_bps == 0) {
    for (std::size_t i = 0; i < users.size(); ++i) out.rate_bps[i] = users[i].cap_bps;
    return out;
  }
  // Water-filling: visit users by demand per unit of weight, smallest
  // first; each one whose demand fits under the current fair level keeps
  // it, and the level is recomputed over the rest.
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < users.size(); ++i)
    if (wanted(users[i]) > 0) order.push_back(i);
  auto per_weight = [&](std::size_t i) {
    return static_cast<double>(wanted(users[i])) / weight_of(users[i]);
  };
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return per_weight(a) < per_weight(b); });
  double left = static_cast<double>(budget_bps);
  double weights = 0;
  for (std::size_t i : order) weights += weight_of(users[i]);
  double level = 0;  // per unit of weight
  bool held = false;
  for (std::size_t k = 0; k < order.size(); ++k) {
    const std::size_t i = order[k];
    level = left / weights;
    if (per_weight(i) <= level) {
      left -= static_cast<double>(wanted(users[i]));
      weights -= weight_of(users[i]);
      continue;
    }
    held = true;  // this user and all after it are held at the level
    break;
  }
  out.level_bps = held ? static_cast<std::uint64_t>(level) : 0;
  for (std::size_t i = 0; i < users.size(); ++i) {
    // Held users get their weighted level; light and idle users the
    // level as well (or no budget limit when nobody is held).
    std::uint64_t r =
        held ? std::max<std::uint64_t>(1, static_cast<std::uint64_t>(level * weight_of(users[i])))
             : 0;
    if (users[i].cap_bps != 0) r = r == 0 ? users[i].cap_bps : std::min(r, users[i].cap_bps);
    out.rate_bps[i] = r;
  }
  return out;
}

}  // namespace mtw::supervisor
