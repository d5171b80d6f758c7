// The supervisor's side of api::Service: the model behind the HTTP API,
// the CLI and (later) D-Bus. Reads come from the running state; every change
// is written to the store first and then applied to that one user live
// (reconcile_user), so a failed write changes nothing.
#include <algorithm>
#include <ctime>
#include <set>

#include "base/log.h"
#include "daemon/daemon_impl.h"
#include "daemon/upstream_sync.h"
#include "proto/secret.h"
#include "supervisor/links.h"

#ifndef MTW_VERSION
#define MTW_VERSION "0.1.0"
#endif

namespace mtw::daemon {
namespace {

// The fake-TLS domain of the newest ee secret, or "".
std::string domain_of(const std::vector<std::string>& secrets) {
  for (auto it = secrets.rbegin(); it != secrets.rend(); ++it) {
    auto s = proto::parse_secret(*it);
    if (s && s->kind == proto::SecretKind::kFakeTls) return s->domain;
  }
  return {};
}

}  // namespace

api::UserRecord Daemon::record_of(const UserRt& u) const {
  api::UserRecord r;
  r.user = u.user;
  r.limits = u.limits;
  for (std::size_t i = 0; i < u.user.secrets.size(); ++i) {
    r.secret_info.push_back({u.user.secrets[i], i < u.user.secret_expires.size()
                                                    ? u.user.secret_expires[i]
                                                    : std::nullopt});
  }
  return r;
}

api::UserStatus Daemon::status_of(const UserRt& u) const {
  api::UserStatus s;
  s.name = u.user.name;
  s.id = u.user.id;
  s.state = std::string(user_state_name(u.state));
  s.fail_reason = u.fail_reason;
  s.mode = std::string(supervisor::middle_mode_name(middle_.mode_of(u)));
  s.enabled = u.user.enabled;
  s.expires_at = u.user.expires_at;
  s.worker_pid = u.worker && !u.worker->gone ? u.worker->proc.pid() : 0;
  s.worker_uid = u.uid_slot ? cfg_.cells.uid_first + 1 + *u.uid_slot : 0;
  s.restarts = u.restarts;
  s.egress_dropped = u.egress_dropped;
  if (u.cell) {
    s.cell = api::CellInfo{
        u.cell->names().netns, u.cell->names().host_if, netns::to_string(u.cell->addrs().cell4),
        u.cell->rates().upload.bits_per_sec, u.cell->rates().download.bits_per_sec};
  }
  s.connections = u.active();
  s.held = static_cast<std::uint32_t>(u.held.size());
  s.refused = u.refused;
  s.connections_total = u.handed_total;
  s.unique_ips = u.unique_ips;
  s.online = u.online();
  if (const UnixSeconds seen = u.seen(wall_now()); seen != 0) s.last_seen = seen;
  s.quota = quota_status(u.limits, u.period_usage.total(), wall_now());
  s.quota.used_bytes = u.period_usage.total();
  s.throttled = u.rate.reasons.any();
  s.throttled_quota = u.rate.reasons.quota;
  s.throttled_unique_ips = u.rate.reasons.unique_ips;
  s.throttle_reason = u.rate.reason_text;
  s.rate_up_bps = u.rate.up_bps;
  s.rate_down_bps = u.rate.down_bps;
  s.measured_up_bps = u.rate_bps_up;
  s.measured_down_bps = u.rate_bps_down;
  s.share_up_bps = u.share_up_bps;
  s.share_down_bps = u.share_down_bps;
  s.bandwidth_weight = u.limits.bandwidth_weight;
  s.bytes_up_total = u.bytes_up_total;
  s.bytes_down_total = u.bytes_down_total;
  s.upstreams_inherited = !u.user.upstreams.has_value();
  s.upstream_names = assigned_names(cfg_, assignment_of(u.user));
  if (u.worker) {
    s.worker_counters.reserve(ipc::kCounterCount);
    for (std::size_t i = 0; i < ipc::kCounterCount; ++i) {
      s.worker_counters.emplace_back(ipc::counter_name(static_cast<ipc::Counter>(i)),
                                     u.worker->counters.values[i]);
    }
    for (const auto& up : u.worker->upstreams)
      s.upstreams.push_back(
          {up.name, up.up, up.connects, up.failures, up.bytes_up, up.bytes_down, up.marked_down});
  }
  return s;
}

base::Result<api::UserRecord> Daemon::commit_user(const StoredUser& changed) {
  if (auto r = store_->update_user(changed); !r) return tl::unexpected(r.error());
  reconcile_user(changed);
  gate_.send_table_if_dirty();
  refresh_lanes();  // a lowered cap takes the lane's credit back now
  write_status();
  return record_of(*users_.find(changed.id));
}

base::Result<std::vector<api::UserRecord>> Daemon::list_users() {
  std::vector<api::UserRecord> out;
  out.reserve(users_.size());
  for (const auto& [id, u] : users_) out.push_back(record_of(*u));
  return out;
}

base::Result<api::UserRecord> Daemon::get_user(std::string_view name) {
  UserRt* u = users_.find(name);
  if (!u) return base::fail(base::Errc::kNotFound, "no user named \"" + std::string(name) + "\"");
  return record_of(*u);
}

base::Result<api::UserRecord> Daemon::create_user(const api::NewUser& nu) {
  if (!valid_user_name(nu.name))
    return base::fail(base::Errc::kBadInput,
                      "name: must be " + std::string(supervisor::kUserNameRule));
  if (users_.find(nu.name))
    return base::fail(base::Errc::kExists, "name: a user named \"" + nu.name + "\" exists");
  if (users_.size() >= user_capacity(cfg_.cells)) {
    return base::fail(base::Errc::kExhausted,
                      "no room for another user in [cells] ipv4_pool / ipv6_prefix / uid range");
  }
  StoredUser s;
  s.name = nu.name;
  s.enabled = nu.enabled;
  s.expires_at = nu.expires_at;
  s.comment = nu.comment;
  s.ad_tag = nu.ad_tag;
  s.upstreams = nu.upstreams;
  s.upstream_password = nu.upstream_password;
  if (auto r = check_assignment(cfg_, s.name, assignment_of(s)); !r)
    return tl::unexpected(r.error());
  s.origin = UserOrigin::kRuntime;
  for (const auto& hex : nu.secrets) {
    auto sec = proto::parse_secret(hex);
    if (!sec) return base::fail(base::Errc::kBadInput, "secrets: " + sec.error().context);
    s.secrets.push_back(proto::format_hex(*sec));
  }
  if (s.secrets.empty()) {
    auto sec = proto::generate_secret(
        proto::SecretKind::kFakeTls,
        nu.tls_domain.empty() ? cfg_.server.first_user_domain : nu.tls_domain);
    if (!sec) return base::fail(base::Errc::kBadInput, "tls_domain: " + sec.error().context);
    s.secrets.push_back(proto::format_hex(*sec));
  }
  if (auto r = users_.check_secrets_free(s.secrets, 0); !r) return tl::unexpected(r.error());
  apply_limit_patch(nu.limits, s.overrides);
  if (auto r = check_limit_overrides(s.overrides); !r) return tl::unexpected(r.error());
  auto id = store_->add_user(s, wall_now());
  if (!id) return tl::unexpected(id.error());
  s.id = *id;
  s.created_at = wall_now();
  reconcile_user(s);
  event(s.id, "user_created", "api");
  gate_.send_table_if_dirty();
  write_status();
  return record_of(*users_.find(s.id));
}

base::Result<api::UserRecord> Daemon::update_user(std::string_view name, const api::UserPatch& p) {
  UserRt* u = users_.find(name);
  if (!u) return base::fail(base::Errc::kNotFound, "no user named \"" + std::string(name) + "\"");
  if (u->user.origin == UserOrigin::kConfig) {
    return base::fail(base::Errc::kPermission,
                      "user \"" + std::string(name) +
                          "\" is declared in the configuration file: change it there");
  }
  StoredUser s = u->user;
  if (p.enabled) s.enabled = *p.enabled;
  if (p.expires_at) s.expires_at = *p.expires_at;
  if (p.comment) s.comment = *p.comment;
  if (p.ad_tag) s.ad_tag = *p.ad_tag;
  if (p.upstreams) s.upstreams = *p.upstreams;
  if (p.upstream_password) s.upstream_password = *p.upstream_password;
  if (p.upstreams || p.upstream_password) {
    if (auto r = check_assignment(cfg_, s.name, assignment_of(s)); !r)
      return tl::unexpected(r.error());
  }
  apply_limit_patch(p, s.overrides);
  if (auto r = check_limit_overrides(s.overrides); !r) return tl::unexpected(r.error());
  return commit_user(s);
}

base::Result<void> Daemon::delete_user(std::string_view name) {
  UserRt* u = users_.find(name);
  if (!u) return base::fail(base::Errc::kNotFound, "no user named \"" + std::string(name) + "\"");
  if (u->user.origin == UserOrigin::kConfig) {
    return base::fail(base::Errc::kPermission,
                      "user \"" + std::string(name) +
                          "\" is declared in the configuration file: remove it there");
  }
  const UserId id = u->user.id;
  if (auto r = store_->remove_user(name); !r) return r;
  event(std::nullopt, "user_removed", std::string(name));
  remove_user_rt(id);
  gate_.send_table();
  write_status();
  return {};
}

base::Result<api::UserRecord> Daemon::rotate_secret(std::string_view name,
                                                    std::string_view new_secret,
                                                    std::uint32_t grace_s) {
  UserRt* u = users_.find(name);
  if (!u) return base::fail(base::Errc::kNotFound, "no user named \"" + std::string(name) + "\"");
  if (u->user.origin == UserOrigin::kConfig) {
    return base::fail(base::Errc::kPermission,
                      "user \"" + std::string(name) +
                          "\" is declared in the configuration file: change its secret there");
  }
  std::string hex;
  if (!new_secret.empty()) {
    auto sec = proto::parse_secret(new_secret);
    if (!sec) return base::fail(base::Errc::kBadInput, "secret: " + sec.error().context);
    hex = proto::format_hex(*sec);
  } else {
    // Same kind as the newest secret: an ee user stays fake-TLS on its domain.
    auto newest = proto::parse_secret(u->user.secrets.back());
    const auto kind = newest ? newest->kind : proto::SecretKind::kFakeTls;
    std::string domain = kind == proto::SecretKind::kFakeTls ? domain_of(u->user.secrets) : "";
    if (kind == proto::SecretKind::kFakeTls && domain.empty())
      domain = cfg_.server.first_user_domain;
    auto sec = proto::generate_secret(kind, domain);
    if (!sec) return base::fail(base::Errc::kInternal, "secret generation: " + sec.error().context);
    hex = proto::format_hex(*sec);
  }
  StoredUser s = u->user;
  const UnixSeconds now = wall_now();
  s.secret_expires.resize(s.secrets.size());
  std::vector<std::string> keep;
  std::vector<std::optional<UnixSeconds>> keep_exp;
  for (std::size_t i = 0; i < s.secrets.size(); ++i) {
    std::optional<UnixSeconds> exp = s.secret_expires[i];
    // `now` is rounded down: one second more guarantees the whole grace.
    const UnixSeconds until = now + grace_s + 1;
    if (!exp || *exp > until) exp = until;
    if (grace_s == 0 || *exp <= now) continue;  // no grace: the old secret stops now
    keep.push_back(s.secrets[i]);
    keep_exp.push_back(exp);
  }
  keep.push_back(hex);
  keep_exp.push_back(std::nullopt);
  if (auto r = users_.check_secrets_free({hex}, s.id); !r) return tl::unexpected(r.error());
  if (std::find(s.secrets.begin(), s.secrets.end(), hex) != s.secrets.end()) {
    return base::fail(base::Errc::kExists, "secret: the user already has this secret");
  }
  s.secrets = std::move(keep);
  s.secret_expires = std::move(keep_exp);
  auto r = commit_user(s);
  if (r) event(s.id, "secret_rotated", "grace_s=" + std::to_string(grace_s));
  return r;
}

void Daemon::expire_secrets(UnixSeconds now) {
  std::vector<StoredUser> changed;
  for (const auto& [id, u] : users_) {
    const auto& ex = u->user.secret_expires;
    bool any = false;
    for (std::size_t i = 0; i < ex.size() && i < u->user.secrets.size(); ++i)
      any |= ex[i] && *ex[i] <= now;
    if (!any) continue;
    StoredUser s = u->user;
    std::vector<std::string> keep;
    std::vector<std::optional<UnixSeconds>> keep_exp;
    for (std::size_t i = 0; i < s.secrets.size(); ++i) {
      const auto e = i < ex.size() ? ex[i] : std::nullopt;
      if (e && *e <= now) continue;
      keep.push_back(s.secrets[i]);
      keep_exp.push_back(e);
    }
    if (keep.empty()) continue;  // never leaves a user without a secret
    s.secrets = std::move(keep);
    s.secret_expires = std::move(keep_exp);
    changed.push_back(std::move(s));
  }
  for (const auto& s : changed) {
    if (auto r = commit_user(s); !r) {
      log()->error("expired secret not removed user={} error={}", s.name, r.error().to_string());
    } else {
      event(s.id, "secret_expired", "grace period over");
    }
  }
}

base::Result<void> Daemon::reset_usage(std::string_view name) {
  UserRt* u = users_.find(name);
  if (!u) return base::fail(base::Errc::kNotFound, "no user named \"" + std::string(name) + "\"");
  const UnixSeconds now = wall_now();
  u->period = period_bounds(u->limits.period, u->limits.anchor_day, now);
  if (auto r = store_->reset_period(u->user.id, u->period.start, now, "api"); !r) return r;
  u->period_usage = Usage{};
  event(u->user.id, "usage_reset", "api");
  policy_.apply(*u, now);
  write_status();
  return {};
}

base::Result<api::UserStatus> Daemon::user_status(std::string_view name) {
  UserRt* u = users_.find(name);
  if (!u) return base::fail(base::Errc::kNotFound, "no user named \"" + std::string(name) + "\"");
  return status_of(*u);
}

base::Result<api::ClientIps> Daemon::client_ips(std::string_view name) {
  UserRt* u = users_.find(name);
  if (!u) return base::fail(base::Errc::kNotFound, "no user named \"" + std::string(name) + "\"");
  api::ClientIps out;
  out.name = u->user.name;
  out.ipv6_prefix = cfg_.connections.admission.ipv6_source_prefix;
  std::vector<supervisor::ClientCount> reported;
  if (u->worker && u->worker->clients) {
    out.truncated = u->worker->clients->truncated;
    reported.reserve(u->worker->clients->open.size());
    for (const auto& c : u->worker->clients->open)
      reported.push_back({{c.peer.family, c.peer.addr}, c.connections});
  }
  std::vector<supervisor::ClientAddr> unreported;
  unreported.reserve(u->unreported.size() + u->held.size());
  for (const auto& x : u->unreported) unreported.push_back(x.client);
  for (const auto& h : u->held) unreported.push_back({h.handoff.peer.family, h.handoff.peer.addr});
  out.ips = supervisor::open_ips(reported, unreported, out.ipv6_prefix);
  return out;
}

std::vector<api::UserStatus> Daemon::all_status() {
  std::vector<api::UserStatus> out;
  out.reserve(users_.size());
  for (const auto& [id, u] : users_) out.push_back(status_of(*u));
  return out;
}

base::Result<std::vector<DayUsage>> Daemon::daily_usage(std::string_view name, UnixSeconds from,
                                                        UnixSeconds to) {
  UserRt* u = users_.find(name);
  if (!u) return base::fail(base::Errc::kNotFound, "no user named \"" + std::string(name) + "\"");
  return store_->daily_history(u->user.id, from, to);
}

base::Result<std::vector<MonthUsage>> Daemon::monthly_usage(std::string_view name, UnixSeconds from,
                                                            UnixSeconds to) {
  UserRt* u = users_.find(name);
  if (!u) return base::fail(base::Errc::kNotFound, "no user named \"" + std::string(name) + "\"");
  return store_->monthly_history(u->user.id, from, to);
}

api::ServerStatus Daemon::server_status() {
  api::ServerStatus s;
  s.version = MTW_VERSION;
  s.started_at = started_wall_;
  s.uptime_s = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started_at_).count());
  s.listeners = listener_names_;
  // The mask profiles' view (supervisor/mask_profile_view.h).
  s.mask_profiles = supervisor::mask_profiles_view(
      mask_.schedule(), cfg_.mask.enabled && cfg_.mask.probe, wall_now());
  if (fleet_) s.fleet = fleet_->view();
  std::vector<UpstreamUse> uses;
  uses.reserve(users_.size());
  for (const auto& [id, u] : users_)
    uses.push_back({assignment_of(u->user), u->worker ? &u->worker->upstreams : nullptr});
  s.upstreams = upstream_view(cfg_, uses);
  for (const auto& [id, u] : users_) {
    ++s.users_total;
    s.users_running += u->state == UserState::kRunning ? 1 : 0;
    s.users_failed += u->state == UserState::kFailed ? 1 : 0;
    s.users_throttled += u->rate.reasons.any() ? 1 : 0;
    s.cells += u->cell ? 1 : 0;
    s.connections += u->active();
  }
  if (const ChildProc* g = gate_.child()) {
    s.gate_pid = g->gone ? 0 : g->proc.pid();
    s.gate_ready = g->ready && !g->gone;
    for (std::size_t i = 0; i < ipc::kCounterCount; ++i) {
      s.gate_counters.emplace_back(ipc::counter_name(static_cast<ipc::Counter>(i)),
                                   g->counters.values[i]);
    }
  }
  s.gate_restarts = gate_.restarts();
  s.masked_total = masked_total_;
  s.handoffs_total = handoffs_total_;
  s.direct_handoffs_total = direct_total_;
  s.memory_bound = std::string(memory_bound_mode_name(memory_plan_.mode));
  s.sweeps = sweeps_;
  s.sweep_cpu_ns_total = static_cast<std::uint64_t>(sweep_cpu_.count());
  if (webhooks_) {
    s.webhooks_delivered = webhooks_->delivered();
    s.webhooks_failed = webhooks_->failed();
    s.webhooks_dropped = webhooks_->dropped();
    s.webhook_failed_attempts = webhooks_->failed_attempts();
  }
  s.middle = middle_.status();
  return s;
}

base::Result<api::Links> Daemon::links(std::string_view name) {
  UserRt* u = users_.find(name);
  if (!u) return base::fail(base::Errc::kNotFound, "no user named \"" + std::string(name) + "\"");
  UserLinks l = user_links(public_host(), cfg_.server.public_port, cfg_.listeners, u->user.secrets);
  return api::Links{std::move(l.host), std::move(l.ports), std::move(l.tg), std::move(l.https)};
}

std::vector<api::LiveEvent> Daemon::events(std::uint64_t after, std::size_t limit) {
  return event_log_.since(after, limit);
}

}  // namespace mtw::daemon
