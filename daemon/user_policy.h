// The policy of one running user, applied: its period (rolled over when it
// ended, the new period's usage read back), its quota state and the events
// of a change, the unique-IP window and its events, and the effective rate
// (supervisor/policy.h) given to the cell's shaper, only when it differs
// from what the shaper has. The rules are supervisor/'s; this is where they
// meet a running user.
// Thread: the event loop only. Lifetime: borrows `cfg`, `cells` and the
// callbacks' targets, which outlive it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "base/error.h"
#include "daemon/user_registry.h"
#include "netns/rate.h"
#include "supervisor/config.h"
#include "supervisor/limits.h"
#include "supervisor/policy.h"
#include "supervisor/store.h"

namespace mtw::daemon {

static_assert(netns::kMinRateBps == supervisor::kMinLimitRateBps &&
                  netns::kMaxRateBps == supervisor::kMaxLimitRateBps,
              "the limits' rate bounds are the shaper's");

// 0 ("unlimited") becomes the shaper's ceiling; htb cannot be told "none".
inline std::uint64_t shaper_bps(std::uint64_t bps) {
  if (bps == 0) return netns::kMaxRateBps;
  return std::clamp(bps, netns::kMinRateBps, netns::kMaxRateBps);
}

// The shaper rates for an effective rate.
netns::ShaperRates shaper_rates(const supervisor::EffectiveRate& eff);

// The users' shapers as the policy sees them: the seam that lets the policy
// run without root (a fake records the calls).
class CellOps {
 public:
  virtual ~CellOps() = default;
  // The rates the user's shaper has now; nullopt when the user has no cell.
  virtual std::optional<netns::ShaperRates> rates(const UserRt& u) const = 0;
  // Gives the user's shaper `r` (the user has a cell).
  [[nodiscard]] virtual base::Result<void> apply_rates(UserRt& u, const netns::ShaperRates& r) = 0;
};

// The shapers of the users' cells (UserRt::cell, netns::Cell::set_rates).
class LiveCellOps final : public CellOps {
 public:
  std::optional<netns::ShaperRates> rates(const UserRt& u) const override;
  [[nodiscard]] base::Result<void> apply_rates(UserRt& u, const netns::ShaperRates& r) override;
};

class UserPolicy {
 public:
  // The user's stored usage in the period that starts at `period_start`.
  using UsageOf =
      std::function<base::Result<supervisor::Usage>(supervisor::UserId, supervisor::UnixSeconds)>;
  // An event of the user (kind, detail) for the event log.
  using Event = std::function<void(supervisor::UserId, std::string_view, std::string_view)>;

  UserPolicy(const supervisor::Config& cfg, CellOps& cells, UsageOf usage_of, Event event)
      : cfg_(cfg), cells_(cells), usage_of_(std::move(usage_of)), event_(std::move(event)) {}

  // Applies the policy to `u` at `now` (unix seconds); touches no other user.
  void apply(UserRt& u, supervisor::UnixSeconds now) const;

 private:
  const supervisor::Config& cfg_;
  CellOps& cells_;
  UsageOf usage_of_;
  Event event_;
};

}  // namespace mtw::daemon
