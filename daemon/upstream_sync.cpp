#include "daemon/upstream_sync.h"

namespace mtw::daemon {

supervisor::UpstreamAssignment assignment_of(const supervisor::StoredUser& u) {
  return supervisor::UpstreamAssignment{u.upstreams, u.upstream_password};
}

std::string egress_key(const proto::EgressSpec& spec) {
  return spec.upstreams.empty() ? std::string() : proto::format_egress(spec);
}

std::vector<UpstreamTransition> upstream_transitions(
    const std::vector<ipc::control::UpstreamReport>& before,
    const std::vector<ipc::control::UpstreamReport>& after) {
  std::vector<UpstreamTransition> out;
  // A worker's upstream starts up with its counters at 0 (at the worker's
  // start, or when an egress change brings the name).
  const ipc::control::UpstreamReport fresh;
  for (const auto& now : after) {
    const ipc::control::UpstreamReport* was = &fresh;
    for (const auto& b : before)
      if (b.name == now.name) was = &b;
    auto add = [&](bool up) { out.push_back({now.name, up, now.failures, now.marked_down}); };
    if (was->up != now.up) {
      add(now.up);
    } else if (now.marked_down > was->marked_down) {
      // A round trip between the reports: up -> down -> up, or down -> up -> down.
      add(!now.up);
      add(now.up);
    }
  }
  return out;
}

const char* transition_kind(const UpstreamTransition& t) noexcept {
  return t.up ? "upstream_up" : "upstream_down";
}

std::string transition_detail(const UpstreamTransition& t) {
  return "upstream=" + t.name + " failures=" + std::to_string(t.failures) +
         " marked_down=" + std::to_string(t.marked_down);
}

}  // namespace mtw::daemon
