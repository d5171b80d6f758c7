// The mask profiles at run time (docs/masking.md, "Profiles at run time"):
// the supervisor's side of MaskSchedule. Targets follow the users' fake-TLS
// domains (re-read after the gate table was sent), probes are started and
// collected from the housekeeping tick, every ready worker that lacks the
// current profiles is sent them, and the profiles are shown in status.json.
// Thread: the event loop only (the probes run on MaskSchedule's threads).
// Lifetime: made with the root; `cfg` and `users` are borrowed and outlive
// it. The schedule is made at the first tick with probing on.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>

#include "daemon/user_registry.h"
#include "supervisor/config.h"
#include "supervisor/mask_schedule.h"

namespace mtw::daemon {

class MaskLink {
 public:
  MaskLink(const supervisor::Config& cfg, UserRegistry& users) : cfg_(cfg), users_(users) {}

  // The users' fake-TLS domains may have changed: new probe targets at the
  // next tick.
  void users_changed() noexcept { targets_dirty_ = true; }
  // Housekeeping: targets, probes (polled once a second), and the current
  // profiles to every ready worker that lacks them (a new or restarted
  // worker gets them within a second of its first report).
  void tick(supervisor::UnixSeconds now);
  // status.json's "mask_profiles":[...], (with the trailing comma).
  void append_status(std::ostream& o) const;
  // Null until the first tick with probing on.
  const supervisor::MaskSchedule* schedule() const noexcept { return schedule_.get(); }

 private:
  void push_profiles();

  const supervisor::Config& cfg_;
  UserRegistry& users_;
  std::unique_ptr<supervisor::MaskSchedule> schedule_;
  bool targets_dirty_ = true;
  supervisor::UnixSeconds polled_at_ = 0;
  std::string bundle_;            // the measured profiles, proto::format_profile_bundle
  std::uint64_t bundle_gen_ = 0;  // 0: nothing measured yet (workers use the built-in one)
};

}  // namespace mtw::daemon
