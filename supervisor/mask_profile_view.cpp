#include "supervisor/mask_profile_view.h"

#include <algorithm>

namespace mtw::supervisor {

std::string_view profile_origin_name(ProfileOrigin o) noexcept {
  switch (o) {
    case ProfileOrigin::kMeasured:
      return "measured";
    case ProfileOrigin::kStored:
      return "stored";
    case ProfileOrigin::kBuiltin:
      return "builtin";
  }
  return "builtin";
}

MaskProfilesView mask_profiles_view(const MaskSchedule* schedule, bool probing, std::int64_t now) {
  MaskProfilesView v;
  v.probing = probing;
  if (schedule == nullptr) return v;
  for (const auto& e : schedule->entries()) {
    MaskProfileView m;
    m.domain = e.target.domain;
    m.target = proto::format_endpoint(e.target.endpoint);
    const proto::TlsProfile& p = e.profile ? *e.profile : proto::builtin_profile();
    m.origin = !e.profile ? ProfileOrigin::kBuiltin
               : e.stored ? ProfileOrigin::kStored
                          : ProfileOrigin::kMeasured;
    m.measured_at = e.profile ? p.measured_at : 0;
    m.age_s = e.profile ? std::max<std::int64_t>(0, now - p.measured_at) : -1;
    m.next_probe_at = e.next_at;
    m.last_attempt_at = e.last_attempt;
    m.last_error = e.last_error;
    m.samples = p.samples;
    m.cipher = p.cipher_suite;
    m.key_share_group = p.key_share_group;
    m.ccs = p.ccs_count;
    m.flight = p.encrypted_records;
    m.flight_wire = proto::flight_wire_range(p);
    m.latency = p.handshake_latency;
    v.profiles.push_back(std::move(m));
  }
  return v;
}

}  // namespace mtw::supervisor
