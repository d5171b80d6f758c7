// What one user's new stored definition asks of the running supervisor:
// a pure decision over the old and new values, so that a change to one
// user costs O(that user). The gate knows each servable user's id and
// secrets and nothing else: a change of limits, comment or expiry within
// the servable time leaves its table as it is (resending it costs every
// user's secrets). Thread-safe (pure).
#pragma once

#include "supervisor/limits.h"
#include "supervisor/store.h"

namespace mtw::supervisor {

// Enabled and not expired at `now`: the gate may identify the user's
// clients and the user may have a cell.
[[nodiscard]] bool servable(const StoredUser& u, UnixSeconds now) noexcept;

struct UserChange {
  bool gate_table = false;      // resend the gate's table (new user, secrets, servability)
  bool reload_secrets = false;  // a running worker takes the new secrets
  bool limits = false;          // re-apply this user's policy (rates, caps) and admit held ones
  // Only its bandwidth_weight changed (or with others): nothing to restart
  // or re-apply now; the next sweep's division of the host budget takes it.
  bool bandwidth_weight = false;
  bool was_servable = false;
  bool now_servable = false;
};

// `before` null: a user the supervisor did not run yet. `before_limits`
// and `after_limits` are the resolved limits (resolve_limits) of each.
[[nodiscard]] UserChange classify_change(const StoredUser* before, const Limits& before_limits,
                                         const StoredUser& after, const Limits& after_limits,
                                         UnixSeconds now);

}  // namespace mtw::supervisor
