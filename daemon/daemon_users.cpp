// Users: the config file's [[user]] tables synced into the store (every
// clash checked before the first write), the first user, each stored user
// brought to its running state (reconcile_user), SIGHUP reload, and the
// proxy links printed for a user.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstdio>
#include <set>
#include <utility>

#include "api/token.h"
#include "base/log.h"
#include "daemon/daemon_impl.h"
#include "daemon/upstream_sync.h"
#include "proto/secret.h"
#include "supervisor/links.h"
#include "supervisor/reveal.h"

namespace mtw::daemon {
namespace {

StoredUser stored_from_config(const UserConfig& c) {
  StoredUser s;
  s.name = c.name;
  for (const auto& sec : c.secrets) s.secrets.push_back(proto::format_hex(sec));
  s.enabled = c.enabled;
  s.expires_at = c.expires_at;
  s.comment = c.comment;
  if (c.ad_tag) s.ad_tag = format_ad_tag(*c.ad_tag);
  s.upstreams = c.upstreams;
  s.upstream_password = c.upstream_password;
  s.overrides = c.overrides;
  s.origin = UserOrigin::kConfig;
  return s;
}

bool same_definition(const StoredUser& a, const StoredUser& b) {
  return a.name == b.name && a.secrets == b.secrets && a.enabled == b.enabled &&
         a.expires_at == b.expires_at && a.comment == b.comment && a.overrides == b.overrides &&
         a.ad_tag == b.ad_tag && a.upstreams == b.upstreams &&
         a.upstream_password == b.upstream_password && a.origin == b.origin;
}

// Every field of the stored definition, the id and times included: a user
// the store holds exactly as it runs needs nothing done.
bool same_stored(const StoredUser& a, const StoredUser& b) {
  return a.id == b.id && same_definition(a, b) && a.secret_expires == b.secret_expires &&
         a.created_at == b.created_at;
}

// The upstream assignments of users added at run time must hold under the
// new file: an [[upstream]] they name removed or turned into one that
// needs a password they lack would leave their workers without an egress.
base::Result<void> check_runtime_assignments(const Config& cfg,
                                             const std::vector<StoredUser>& stored) {
  for (const auto& s : stored) {
    if (s.origin != UserOrigin::kRuntime) continue;
    auto e = egress_for(cfg, s.name, assignment_of(s));
    if (!e)
      return base::fail(base::Errc::kBadInput,
                        "user \"" + s.name + "\" (added at run time): " + e.error().context +
                            "; change its upstreams first (PATCH /v1/users/" + s.name + ")");
  }
  return {};
}

// A config user clashes with a runtime user of the same name, or shares a
// secret key with a user that stays (runtime, or still in the file).
base::Result<void> check_config_users(const Config& cfg, const std::vector<StoredUser>& stored) {
  for (const auto& uc : cfg.users) {
    for (const auto& s : stored) {
      if (s.name == uc.name && s.origin == UserOrigin::kRuntime) {
        return base::fail(base::Errc::kExists,
                          uc.pos.to_string() + ": user \"" + uc.name +
                              "\" also exists as a user added at run time; rename one of them");
      }
      if (s.name == uc.name) continue;
      const bool s_stays = s.origin == UserOrigin::kRuntime || cfg.find_user(s.name) != nullptr;
      if (!s_stays) continue;
      for (const auto& sec : uc.secrets) {
        for (const auto& other : s.secrets) {
          auto o = proto::parse_secret(other);
          if (o && o->key == sec.key) {
            return base::fail(base::Errc::kExists, uc.pos.to_string() + ": user \"" + uc.name +
                                                       "\" uses a secret key of user \"" + s.name +
                                                       "\"");
          }
        }
      }
    }
  }
  return {};
}

// The file's users plus those added at run time must fit the cells of the
// running configuration. At a reload [cells] keeps its running values, so a
// file that raises uid_count together with new users is checked against the
// old range: taking it would leave the surplus users failed with no uid.
base::Result<void> check_room(const Config& cfg, const std::vector<StoredUser>& stored,
                              bool at_start) {
  std::uint64_t runtime = 0;
  for (const auto& s : stored)
    if (s.origin == UserOrigin::kRuntime) ++runtime;
  const std::uint64_t total = cfg.users.size() + runtime;
  const std::uint64_t room = user_capacity(cfg.cells);
  if (total <= room) return {};
  return base::fail(base::Errc::kExhausted,
                    std::to_string(total) + " users (" + std::to_string(cfg.users.size()) +
                        " in the file, " + std::to_string(runtime) +
                        " added at run time) but the " + (at_start ? "" : "running ") +
                        "[cells] uid range and pools hold " + std::to_string(room) +
                        (at_start ? "; raise uid_count or the pools, or remove users"
                                  : "; [cells] changes take effect only at a restart"));
}

}  // namespace

base::Result<void> Daemon::sync_config_users(const Config& cfg, bool at_start) {
  auto stored = store_->list_users();
  if (!stored) return base::fail(stored.error().code, "store: " + stored.error().to_string());
  // Every clash is checked before the first write, so a rejected file
  // leaves the store exactly as it was.
  if (auto r = check_config_users(cfg, *stored); !r) return r;
  if (auto r = check_room(cfg, *stored, at_start); !r) return r;
  // At start such a user's worker fails with the reason instead: the
  // supervisor serves the others.
  if (!at_start)
    if (auto r = check_runtime_assignments(cfg, *stored); !r) return r;
  std::set<std::string> declared;
  const UnixSeconds now = wall_now();
  for (const auto& uc : cfg.users) {
    declared.insert(uc.name);
    StoredUser want = stored_from_config(uc);
    const StoredUser* have = nullptr;
    for (const auto& s : *stored)
      if (s.name == uc.name) have = &s;
    if (!have) {
      if (auto r = store_->add_user(want, now); !r) {
        return base::fail(r.error().code,
                          uc.pos.to_string() + ": user \"" + uc.name + "\": " + r.error().context);
      }
      continue;
    }
    want.id = have->id;
    want.created_at = have->created_at;
    if (!same_definition(*have, want)) {
      if (auto r = store_->update_user(want); !r) {
        return base::fail(r.error().code,
                          uc.pos.to_string() + ": user \"" + uc.name + "\": " + r.error().context);
      }
    }
  }
  for (const auto& s : *stored) {
    if (s.origin == UserOrigin::kConfig && !declared.count(s.name)) {
      if (auto r = store_->remove_user(s.name); !r) return r;
      if (!at_start) log()->info("user removed name={} reason=not_in_config", s.name);
    }
  }
  return {};
}

base::Result<void> Daemon::maybe_create_first_user() {
  if (!cfg_.server.create_first_user) return {};
  auto stored = store_->list_users();
  if (!stored) return base::fail(stored.error().code, stored.error().to_string());
  if (!stored->empty()) return {};
  auto secret = proto::generate_secret(proto::SecretKind::kFakeTls, cfg_.server.first_user_domain);
  if (!secret) {
    return base::fail(base::Errc::kBadInput, "server.first_user_domain: " + secret.error().context);
  }
  StoredUser u;
  u.name = "user1";
  u.secrets.push_back(proto::format_hex(*secret));
  u.comment = "created on first start";
  auto id = store_->add_user(u, wall_now());
  if (!id) return base::fail(id.error().code, id.error().to_string());
  u.id = *id;
  log()->info("first user created name=user1");
  event(*id, "user_created", "first start");
  return reveal_first_start("Created the first user \"user1\". Give these links to its owner:\n" +
                            links_text(u, true));
}

bool Daemon::servable(const UserRt& u, UnixSeconds now) const {
  return supervisor::servable(u.user, now);
}

void Daemon::load_users_from_store() {
  auto stored = store_->list_users();
  if (!stored) {
    log()->error("store list failed error={}", stored.error().to_string());
    return;
  }
  for (const auto& s : *stored) reconcile_user(s);
}

// Brings one user's running state in line with its stored definition,
// touching nothing else.
void Daemon::reconcile_user(const StoredUser& s) {
  const UnixSeconds now = wall_now();
  UserRt* found = users_.find(s.id);
  const bool fresh = found == nullptr;
  if (fresh) {
    found = &users_.add(
        s, RestartPolicy::Options{std::chrono::milliseconds(cfg_.timeouts.restart_backoff_min_ms),
                                  std::chrono::milliseconds(cfg_.timeouts.restart_backoff_max_ms),
                                  std::chrono::milliseconds(cfg_.timeouts.crash_loop_window_ms),
                                  cfg_.timeouts.crash_loop_restarts});
    found->last_activity = Clock::now();
  }
  UserRt& u = *found;
  const bool tag_changed = !fresh && u.user.ad_tag != s.ad_tag;
  const Limits limits = resolve_limits(cfg_.defaults, s.overrides);
  // What this change asks of the gate, the worker and the cell (O(this user)).
  const UserChange change = classify_change(fresh ? nullptr : &u.user, u.limits, s, limits, now);
  users_.set_definition(u, s);
  u.limits = limits;
  u.period = period_bounds(u.limits.period, u.limits.anchor_day, now);
  if (auto usage = store_->period_usage(s.id, u.period.start)) u.period_usage = *usage;
  if (change.gate_table) gate_.table_changed();

  if (!change.now_servable) {
    if (u.state != UserState::kDisabled) {
      const bool expired = u.user.enabled;
      teardown_user(u, UserState::kDisabled, expired ? "expired" : "disabled");
      event(s.id, expired ? "user_expired" : "user_disabled", "");
    }
    u.state = UserState::kDisabled;
    touch(u);
    return;
  }
  if (u.state == UserState::kDisabled || (u.state == UserState::kFailed && !fresh)) {
    u.restart.reset();
    u.fail_reason.clear();
    if (u.state == UserState::kFailed) teardown_user(u, UserState::kDisabled, "re-enabled");
    u.state = UserState::kIdle;
    touch(u);
  }
  if (change.reload_secrets && u.worker && u.worker->ready) send_reload_secrets(u);
  // Its upstreams (an API change, or [[upstream]] / [egress] at a reload):
  // sent only when the worker's egress differs.
  send_egress(u);
  if (tag_changed) {
    log()->info("ad tag changed user={} tagged={}", s.name, !s.ad_tag.empty());
    middle_.send(u, true);  // live, for new connections; the open ones keep their path
  }
  // The first tag in use: fetch the material now, not at the next round.
  if ((fresh || tag_changed) && !s.ad_tag.empty()) middle_.refresh_unless_ready();
  if (u.state == UserState::kIdle && !u.limits.on_demand) start_user(u);
  if (change.limits) {
    log()->info("limits changed user={}", s.name);
    policy_.apply(u, now);
    drain_held(u);
  }
}

void Daemon::remove_user_rt(UserId id) {
  UserRt* u = users_.find(id);
  if (!u) return;
  teardown_user(*u, UserState::kDisabled, "removed");
  budget_.erase(id);
  users_.remove(id);
  gate_.table_changed();
}

void Daemon::apply_stored_users(const std::vector<StoredUser>& stored, bool all) {
  std::set<UserId> present;
  for (const auto& s : stored) present.insert(s.id);
  std::vector<UserId> gone;
  for (const auto& [id, u] : users_)
    if (!present.count(id)) gone.push_back(id);
  for (UserId id : gone) {
    if (!all) log()->info("user removed name={} reason=store", users_.find(id)->user.name);
    remove_user_rt(id);
  }
  for (const auto& s : stored) {
    if (!all) {
      const UserRt* u = users_.find(s.id);
      if (u && same_stored(u->user, s)) continue;
      log()->info("user {} name={} reason=store", u ? "changed" : "added", s.name);
    }
    reconcile_user(s);
  }
}

void Daemon::apply_user_changes(const std::vector<std::string>& names) {
  if (stopping_) return;
  std::set<std::string_view> done;
  for (const std::string& name : names) {
    if (!done.insert(name).second) continue;
    auto s = store_->find_user(name);
    if (!s) {
      // The periodic resync catches it up.
      log()->warn("changed user not read name={} error={}", name, s.error().to_string());
      continue;
    }
    UserRt* running = users_.find(name);
    // Gone, or removed and added again under the same name (a new id).
    if (running && (!*s || running->user.id != (*s)->id)) {
      log()->info("user removed name={} reason=store", name);
      remove_user_rt(running->user.id);
      running = nullptr;
    }
    if (!*s) continue;
    if (running && same_stored(running->user, **s)) continue;  // this host's own change
    log()->info("user {} name={} reason=store", running ? "changed" : "added", name);
    reconcile_user(**s);
  }
  gate_.send_table_if_dirty();
  refresh_lanes();
  write_status();
}

void Daemon::resync_users() {
  if (stopping_) return;
  auto stored = store_->list_users();
  if (!stored) {
    log()->warn("user resync failed, the running users stay error={}", stored.error().to_string());
    return;
  }
  apply_stored_users(*stored, false);
  gate_.send_table_if_dirty();
  refresh_lanes();
  write_status();
}

base::Result<api::ReloadOutcome> Daemon::reload() {
  // RELOADING=1 ... READY=1 brackets the reload for `systemctl reload`,
  // whether the file was taken or rejected (the old one then stays).
  if (ready_sent_) notifier_.reloading();
  auto r = reload_config();
  if (ready_sent_) notifier_.ready(status_summary());
  return r;
}

// What cannot change under running cells and sockets (listeners, most of
// [cells], the state and run directories) is taken from the running
// configuration, with a warning, until the next restart. Returns the names
// of those that changed.
std::vector<std::string> Daemon::keep_restart_only_settings(Config& next) const {
  std::vector<std::string> pending;
  auto listener_key = [](const std::vector<ListenerConfig>& ls) {
    std::vector<std::pair<std::string, proto::AllowedProtocols>> k;
    for (const auto& l : ls) k.emplace_back(proto::format_endpoint(l.bind), l.protocols);
    return k;
  };
  const bool same_listeners = listener_key(next.listeners) == listener_key(cfg_.listeners);
  if (!same_listeners) {
    log()->warn("reload: [[listener]] changes take effect at the next restart");
    pending.emplace_back("[[listener]]");
  }
  std::vector<ListenerConfig> listeners = cfg_.listeners;
  // The same listeners: their ad tags apply now (new connections only).
  for (std::size_t i = 0; same_listeners && i < listeners.size(); ++i)
    listeners[i].ad_tag = next.listeners[i].ad_tag;
  next.listeners = std::move(listeners);
  // [middle]: the tags and the fallback apply now; the material's sources
  // and the workers' middle flags at the next restart.
  MiddleConfig middle = cfg_.middle;
  middle.ad_tag = next.middle.ad_tag;
  middle.fallback = next.middle.fallback;
  if (!(middle == next.middle)) {
    log()->warn(
        "reload: [middle] sources, refresh, pool, stall and public_ip take effect at the "
        "next restart");
    pending.emplace_back("[middle]");
  }
  next.middle = std::move(middle);
  // worker_nofile and a new non-zero worker_memory_max reach the workers
  // started after the reload; switching the memory bound on or off, and the
  // rest of [cells] (pools, names, uids and gids, which were checked against
  // the host at start, the cgroup), wait for a restart.
  CellsConfig cells = cfg_.cells;
  cells.worker_nofile = next.cells.worker_nofile;
  cells.gate_memory_max_bytes = next.cells.gate_memory_max_bytes;  // at the gate's next start
  if ((next.cells.worker_memory_max_bytes == 0) == (cfg_.cells.worker_memory_max_bytes == 0))
    cells.worker_memory_max_bytes = next.cells.worker_memory_max_bytes;
  if (!(cells == next.cells)) {
    log()->warn(
        "reload: [cells] pools/names/uids/gids/cgroup_dir and switching worker_memory_max on or "
        "off take effect at the next restart");
    pending.emplace_back("[cells]");
  }
  if (next.server.state_dir != cfg_.server.state_dir ||
      next.server.run_dir != cfg_.server.run_dir) {
    log()->warn("reload: [server] state_dir and run_dir take effect at the next restart");
    pending.emplace_back("[server] state_dir/run_dir");
  }
  next.cells = cells;
  next.server.state_dir = cfg_.server.state_dir;
  next.server.run_dir = cfg_.server.run_dir;
  return pending;
}

base::Result<api::ReloadOutcome> Daemon::reload_config() {
  log()->info("reload requested path={}", opts_.config_path);
  auto cfg = load_config(opts_.config_path);
  if (!cfg) {
    log()->error("reload rejected, keeping the running configuration:\n{}", cfg.error().context);
    event(std::nullopt, "reload_failed", cfg.error().context.substr(0, 500));
    return base::fail(cfg.error().code,
                      "configuration rejected, the running one is kept: " + cfg.error().context);
  }
  Config next = std::move(*cfg);
  api::ReloadOutcome outcome{keep_restart_only_settings(next)};
  // Users first: a clash with a runtime user rejects the whole reload.
  if (auto r = sync_config_users(next, false); !r) {
    log()->error("reload rejected, keeping the running configuration: {}", r.error().to_string());
    event(std::nullopt, "reload_failed", r.error().to_string());
    return base::fail(r.error().code,
                      "configuration rejected, the running one is kept: " + r.error().context);
  }
  const bool gate_args_changed = next.mask != cfg_.mask ||
                                 next.timeouts.handshake_ms != cfg_.timeouts.handshake_ms ||
                                 next.connections.per_ip_rate != cfg_.connections.per_ip_rate ||
                                 next.connections.admission != cfg_.connections.admission;
  cfg_ = std::move(next);
  event_log_.set_capacity(cfg_.api.events_kept);
  base::init_logging(opts_.log_level.empty() ? cfg_.server.log_level : opts_.log_level);
  if (egress_) (void)egress_->update();  // logged there; on failure the previous sets stay
  if (sources_) sources_->update();      // a user's source (or its interface's address) may change
  auto stored = store_->list_users();
  if (!stored) {
    log()->error("reload: store list failed error={}", stored.error().to_string());
    return base::fail(stored.error().code, stored.error().to_string());
  }
  apply_stored_users(*stored, true);
  if (gate_args_changed && gate_.child()) {
    log()->info("reload: restarting the gate for new mask/handshake settings");
    gate_.terminate();
  }
  gate_.send_table();
  rebalance();
  middle_.push(true);  // [middle] ad_tag or a listener's tag may have changed
  middle_.refresh();   // a tag may be in use for the first time
  // [telegram], [mask] and the connection timeouts reach running workers
  // for their new connections; workers not yet ready get them when they are.
  for (auto& [id, u] : users_) send_settings(*u);
  event(std::nullopt, "reloaded", "users=" + std::to_string(users_.size()));
  log()->info("reloaded users={} restart_needed={}", users_.size(), outcome.restart_needed.size());
  write_status();
  return outcome;
}

std::string Daemon::public_host() const {
  return choose_public_host(cfg_.server.public_host, looked_up_host_);
}

std::string Daemon::links_text(const StoredUser& u, bool with_qr) const {
  const UserLinks l = user_links(public_host(), cfg_.server.public_port, cfg_.listeners, u.secrets);
  std::string out;
  if (cfg_.server.public_host.empty()) {
    out += "(links use " + l.host + "; set [server] public_host to the name clients should use)\n";
  }
  for (const auto& link : l.tg) out += "  " + link + "\n";
  for (const auto& link : l.https) out += "  " + link + "\n";
  if (with_qr && !l.tg.empty()) {
    if (auto qr = qr_terminal(l.tg.front())) out += *qr;
  }
  return out;
}

base::Result<void> Daemon::reveal_first_start(std::string_view text) {
  const std::string path = cfg_.server.state_dir + "/first-start-secrets.txt";
  std::fflush(stdout);  // what printf buffered comes first
  auto r = reveal_secrets(text, STDOUT_FILENO, path);
  if (!r) return base::fail(r.error().code, "first-start secrets: " + r.error().to_string());
  if (*r == RevealedTo::kFile)
    log()->warn("first-start secrets not printed (stdout is not a terminal) path={}", path);
  return {};
}

base::Result<void> Daemon::store_fresh_token() {
  if (fresh_token_.empty()) return {};
  const std::string token_path = cfg_.server.state_dir + "/api_token.sha256";
  if (auto r = api::store_token_hash(token_path, api::token_hash(fresh_token_)); !r) return r;
  const std::string token = std::exchange(fresh_token_, {});
  return reveal_first_start("API bearer token (shown once; only its hash is kept in " + token_path +
                            "):\n  " + token + "\n");
}

}  // namespace mtw::daemon
