// The mask profiles at run time, the supervisor's side (mask_link.h).
#include "daemon/mask_link.h"

#include <algorithm>
#include <ostream>
#include <vector>

#include "base/log.h"
#include "proto/secret.h"

namespace mtw::daemon {

namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("supervisor");
  return l;
}

std::string json_text(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;  // never in a domain or our error texts
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace

void MaskLink::tick(supervisor::UnixSeconds now) {
  if (!cfg_.mask.enabled || !cfg_.mask.probe) return;
  if (!schedule_) {
    supervisor::MaskSchedule::Options o;
    o.dir = cfg_.server.state_dir + "/mask-profiles";
    o.interval_s = cfg_.mask.probe_interval_s;
    o.jitter_s = cfg_.mask.probe_jitter_s;
    o.retry_s = std::min<std::uint32_t>(600, cfg_.mask.probe_interval_s);
    o.probe.handshakes = static_cast<int>(cfg_.mask.probe_handshakes);
    o.probe.step_timeout_ms = static_cast<int>(cfg_.mask.connect_timeout_ms);
    schedule_ = std::make_unique<supervisor::MaskSchedule>(std::move(o));
    targets_dirty_ = true;
  }
  if (targets_dirty_) {
    targets_dirty_ = false;
    std::vector<std::string> domains;
    for (const auto& [id, u] : users_) {
      for (const auto& text : u->user.secrets) {
        auto s = proto::parse_secret(text);
        if (s && s->kind == proto::SecretKind::kFakeTls) domains.push_back(s->domain);
      }
    }
    for (const auto& problem : schedule_->set_targets(
             supervisor::mask_probe_targets(supervisor::mask_routes(cfg_), domains)))
      log()->warn("mask profile on disk not used reason=\"{}\"", problem);
  }
  if (now == polled_at_) return;  // once a second is plenty: probes take seconds
  polled_at_ = now;
  const auto r = schedule_->poll(now);
  if (!r.finished.empty() && r.error.empty()) {
    const proto::TlsProfile& p = schedule_->profile_for(r.finished);
    const proto::RecordRange wire = proto::flight_wire_range(p);
    log()->info("mask probe done domain={} flight_records={} flight_wire={}-{} latency_ms={}",
                r.finished, p.encrypted_records.size(), wire.min, wire.max,
                p.handshake_latency.median_ms);
  }
  if (!r.error.empty())
    log()->warn("mask probe failed domain={} error=\"{}\" kept=last_good_or_builtin", r.finished,
                r.error);
  if (!r.save_error.empty())
    log()->warn("mask profile not saved domain={} error=\"{}\"", r.finished, r.save_error);
  if (!r.started.empty()) log()->debug("mask probe started domain={}", r.started);
  if (r.changed) {
    std::vector<proto::TlsProfile> measured;
    for (const auto& e : schedule_->entries())
      if (e.profile) measured.push_back(*e.profile);
    bundle_ = proto::format_profile_bundle(measured);
    ++bundle_gen_;
  }
  push_profiles();
}

void MaskLink::push_profiles() {
  if (bundle_gen_ == 0) return;
  base::UniqueFd fd;
  for (auto& [id, u] : users_) {
    ChildProc* w = u->worker.get();
    if (!w || w->gone || !w->ready || w->profiles_gen == bundle_gen_) continue;
    if (!fd) {
      auto made = memfd_with("mtwarden-mask-profiles", bundle_);
      if (!made) {
        log()->error("mask profiles not sent error={}", made.error().to_string());
        return;
      }
      fd = std::move(*made);
    }
    if (auto s = send_to(*w, ipc::control::MaskProfiles{bundle_gen_}, fd.get()); !s) {
      log()->debug("mask profiles not sent user={} error={}", u->user.name, s.error().to_string());
      continue;  // tried again at the next tick
    }
    w->profiles_gen = bundle_gen_;
  }
}

void MaskLink::append_status(std::ostream& o) const {
  o << "\"mask_profiles\":[";
  if (schedule_) {
    bool first = true;
    for (const auto& e : schedule_->entries()) {
      const proto::TlsProfile& p = e.profile ? *e.profile : proto::builtin_profile();
      const proto::RecordRange wire = proto::flight_wire_range(p);
      o << (first ? "" : ",") << "{\"domain\":" << json_text(e.target.domain)
        << ",\"target\":" << json_text(proto::format_endpoint(e.target.endpoint))
        << ",\"source\":" << (e.profile ? "\"measured\"" : "\"builtin\"")
        << ",\"measured_at\":" << p.measured_at << ",\"next_probe_at\":" << e.next_at
        << ",\"flight_records\":" << p.encrypted_records.size()
        << ",\"flight_wire_min\":" << wire.min << ",\"flight_wire_max\":" << wire.max
        << ",\"last_error\":" << json_text(e.last_error) << "}";
      first = false;
    }
  }
  o << "],";
}

}  // namespace mtw::daemon
