// The scope of a user's change (user_change.h).
#include "supervisor/user_change.h"

namespace mtw::supervisor {

bool servable(const StoredUser& u, UnixSeconds now) noexcept {
  return u.enabled && (!u.expires_at || *u.expires_at > now);
}

UserChange classify_change(const StoredUser* before, const Limits& before_limits,
                           const StoredUser& after, const Limits& after_limits, UnixSeconds now) {
  UserChange c;
  c.was_servable = before != nullptr && servable(*before, now);
  c.now_servable = servable(after, now);
  const bool secrets_changed = before != nullptr && before->secrets != after.secrets;
  c.gate_table = before == nullptr || secrets_changed || c.was_servable != c.now_servable;
  c.reload_secrets = secrets_changed;
  // The weight is no input of the user's own policy: it only moves the
  // shares of the next division (daemon/bandwidth_share.h).
  Limits before_own = before_limits, after_own = after_limits;
  before_own.bandwidth_weight = after_own.bandwidth_weight = 1;
  c.limits = before != nullptr && before_own != after_own;
  c.bandwidth_weight =
      before != nullptr && before_limits.bandwidth_weight != after_limits.bandwidth_weight;
  return c;
}

}  // namespace mtw::supervisor
