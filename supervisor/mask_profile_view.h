// What the API, the CLI and the metrics show of the mask profiles
// (docs/masking.md, "Profiles at run time"): per fake-TLS domain, where the
// profile in use comes from, how old it is and its key values. A pure view
// over MaskSchedule's entries, so the daemon only hands the schedule over.
// Thread-safety: plain values; build it on the thread that owns the schedule.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "proto/tls_profile.h"
#include "supervisor/mask_schedule.h"

namespace mtw::supervisor {

// Where the profile a domain is answered with comes from.
//   measured: probed by this run of the supervisor;
//   stored:   read from state_dir/mask-profiles at start, not probed again yet;
//   builtin:  no measurement yet (or ever: probing off), proto::builtin_profile().
enum class ProfileOrigin { kMeasured, kStored, kBuiltin };
std::string_view profile_origin_name(ProfileOrigin o) noexcept;  // "measured", "stored", "builtin"

struct MaskProfileView {
  std::string domain;
  std::string target;  // HOST:PORT probed
  ProfileOrigin origin = ProfileOrigin::kBuiltin;
  std::int64_t measured_at = 0;  // unix seconds; 0 for builtin
  std::int64_t age_s = -1;       // now - measured_at; -1 for builtin
  std::int64_t next_probe_at = 0;
  std::int64_t last_attempt_at = 0;  // 0: not yet
  std::string last_error;            // of the last probe; "" after a good one
  std::size_t samples = 0;
  std::uint16_t cipher = 0;
  std::uint16_t key_share_group = 0;
  std::size_t ccs = 0;
  std::vector<proto::RecordRange> flight;  // encrypted first-flight records
  proto::RecordRange flight_wire;          // one fake-TLS record's wire size range
  proto::LatencySummary latency;
};

struct MaskProfilesView {
  bool probing = false;  // [mask] enabled and probe: the schedule runs
  std::vector<MaskProfileView> profiles;
};

// `schedule` null (probing off, or not started yet): no entries.
MaskProfilesView mask_profiles_view(const MaskSchedule* schedule, bool probing, std::int64_t now);

}  // namespace mtw::supervisor
