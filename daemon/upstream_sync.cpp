#include "daemon/upstream_sync.h"

#include <algorithm>

#include "proto/dc_table.h"

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

std::vector<api::ServerStatus::Upstream> upstream_view(const supervisor::Config& c,
                                                       std::span<const UpstreamUse> users) {
  std::vector<api::ServerStatus::Upstream> out;
  out.reserve(c.upstreams.size());
  for (const auto& u : c.upstreams) {
    api::ServerStatus::Upstream v;
    v.name = u.name;
    v.type = std::string(proto::upstream_type_name(u.type));
    if (u.type != proto::UpstreamType::kDirect) v.address = proto::format_endpoint(u.address);
    v.auth = std::string(supervisor::upstream_auth_name(u.auth));
    v.weight = u.weight;
    if (!u.interface.empty()) {
      v.source = "interface " + u.interface;
    } else {
      v.source = u.source4;
      if (!u.source6.empty()) v.source += (v.source.empty() ? "" : ",") + u.source6;
    }
    out.push_back(std::move(v));
  }
  auto find = [&](const std::string& name) -> api::ServerStatus::Upstream* {
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& v) { return v.name == name; });
    return it == out.end() ? nullptr : &*it;
  };
  for (const auto& use : users) {
    for (const auto& name : supervisor::assigned_names(c, use.assignment))
      if (auto* v = find(name)) ++v->users;
    if (use.reports == nullptr) continue;
    for (const auto& r : *use.reports) {
      auto* v = find(r.name);
      if (v == nullptr) continue;  // "direct-fallback", or an upstream a reload removed
      ++(r.up ? v->workers_up : v->workers_down);
      v->connects += r.connects;
      v->failures += r.failures;
      v->marked_down += r.marked_down;
      v->bytes_up += r.bytes_up;
      v->bytes_down += r.bytes_down;
    }
  }
  return out;
}

}  // namespace mtw::daemon
