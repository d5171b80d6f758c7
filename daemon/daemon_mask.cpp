// The mask profiles at run time (docs/masking.md, "Profiles at run time"):
// the daemon's side of MaskSchedule. Targets follow the users' fake-TLS
// domains (re-read whenever the gate table is sent), probes are started and
// collected from the housekeeping tick, and the profiles are shown in
// status.json.
#include <ostream>

#include "base/log.h"
#include "daemon/daemon_impl.h"
#include "proto/secret.h"
#include "supervisor/mask_schedule.h"

namespace mtw::daemon {

namespace {

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

void Daemon::mask_tick() {
  if (!cfg_.mask.enabled || !cfg_.mask.probe) return;
  const UnixSeconds now = wall_now();
  if (!mask_schedule_) {
    MaskSchedule::Options o;
    o.dir = cfg_.server.state_dir + "/mask-profiles";
    o.interval_s = cfg_.mask.probe_interval_s;
    o.jitter_s = cfg_.mask.probe_jitter_s;
    o.retry_s = std::min<std::uint32_t>(600, cfg_.mask.probe_interval_s);
    o.probe.handshakes = static_cast<int>(cfg_.mask.probe_handshakes);
    o.probe.step_timeout_ms = static_cast<int>(cfg_.mask.connect_timeout_ms);
    mask_schedule_ = std::make_unique<MaskSchedule>(std::move(o));
    mask_targets_dirty_ = true;
  }
  if (mask_targets_dirty_) {
    mask_targets_dirty_ = false;
    std::vector<std::string> domains;
    for (const auto& [id, u] : users_) {
      for (const auto& text : u->user.secrets) {
        auto s = proto::parse_secret(text);
        if (s && s->kind == proto::SecretKind::kFakeTls) domains.push_back(s->domain);
      }
    }
    for (const auto& problem :
         mask_schedule_->set_targets(mask_probe_targets(mask_routes(cfg_), domains)))
      log()->warn("mask profile on disk not used reason=\"{}\"", problem);
  }
  if (now == mask_polled_at_) return;  // once a second is plenty: probes take seconds
  mask_polled_at_ = now;
  const auto r = mask_schedule_->poll(now);
  if (!r.finished.empty() && r.error.empty()) {
    const proto::TlsProfile& p = mask_schedule_->profile_for(r.finished);
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
    for (const auto& e : mask_schedule_->entries())
      if (e.profile) measured.push_back(*e.profile);
    mask_bundle_ = proto::format_profile_bundle(measured);
    ++mask_bundle_gen_;
  }
  push_mask_profiles();
}

// Every ready worker that lacks the current profiles gets them: a new or
// restarted worker within a second of its first report.
void Daemon::push_mask_profiles() {
  if (mask_bundle_gen_ == 0) return;
  base::UniqueFd fd;
  for (auto& [id, u] : users_) {
    ChildProc* w = u->worker.get();
    if (!w || w->gone || !w->ready || w->profiles_gen == mask_bundle_gen_) continue;
    if (!fd) {
      auto made = memfd_with("mtwarden-mask-profiles", mask_bundle_);
      if (!made) {
        log()->error("mask profiles not sent error={}", made.error().to_string());
        return;
      }
      fd = std::move(*made);
    }
    if (auto s = send_to(*w, ipc::control::MaskProfiles{mask_bundle_gen_}, fd.get()); !s) {
      log()->debug("mask profiles not sent user={} error={}", u->user.name, s.error().to_string());
      continue;  // tried again at the next tick
    }
    w->profiles_gen = mask_bundle_gen_;
  }
}

void Daemon::append_mask_status(std::ostream& o) const {
  o << "\"mask_profiles\":[";
  if (mask_schedule_) {
    bool first = true;
    for (const auto& e : mask_schedule_->entries()) {
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
