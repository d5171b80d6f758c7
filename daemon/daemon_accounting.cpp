// Per-connection admission (caps, hold queue, fair share), the accounting
// sweep (veth counters -> store, one transaction), the live quota / unique-IP
// policy, idle teardown of on-demand cells, and the status file.
#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <sstream>

#include "base/file.h"
#include "base/log.h"
#include "daemon/daemon_impl.h"
#include "ipc/control_socket.h"
#include "netns/rate.h"

namespace mtw::daemon {
namespace {

namespace control = ipc::control;

constexpr std::uint64_t kReportEvery = 5;       // sweeps between report requests per worker
constexpr std::uint64_t kIdleReportEvery = 60;  // the same for a worker without connections

std::string json_str(std::string_view s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else {
      o += c;
    }
  }
  return o + "\"";
}

std::uint64_t cpu_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace

std::string Daemon::client_key(const control::PeerAddress& p) const {
  return unique_ip_key(p.family, p.addr, cfg_.connections.admission.ipv6_source_prefix);
}

void Daemon::event(std::optional<UserId> user, std::string_view kind, std::string_view detail) {
  std::string name;
  if (user) {
    if (const UserRt* u = users_.find(*user)) name = u->user.name;
  }
  event_log_.record(user, std::move(name), kind, detail, wall_now());
}

void Daemon::arm_timer(asio::steady_timer& t, std::chrono::milliseconds every,
                       void (Daemon::*fn)()) {
  t.expires_after(every);
  t.async_wait([this, &t, every, fn](const error_code& ec) {
    if (ec || stopping_) return;
    (this->*fn)();
    if (!stopping_) arm_timer(t, every, fn);
  });
}

// ---- connections -----------------------------------------------------------

void Daemon::mask_via_gate(control::Handoff h, base::UniqueFd fd) {
  ++masked_total_;
  if (!gate_.alive()) return;  // fd closes: the client sees a reset
  if (auto r = gate_.send(control::GateMask{std::move(h)}, fd.get()); !r) {
    log()->debug("mask hand-back failed error={}", r.error().to_string());
  }
}

bool Daemon::can_admit(const UserRt& u) const {
  if (!u.worker || !u.worker->ready || u.state != UserState::kRunning) return false;
  // Credit a lane still has counts as taken: the gate may spend it any time.
  const std::uint64_t budget = cfg_.connections.global_budget;
  return admit(AdmitInput{u.active() + u.lane_reserved(), u.limits.max_connections, u.allowance},
               budget == 0 ? BudgetView{} : budget_view(), budget);
}

void Daemon::forward(UserRt& u, HeldConn c) {
  auto bytes = control::encode(control::Message{c.handoff});
  base::Result<void> r =
      bytes ? base::Result<void>{} : base::fail(bytes.error().code, bytes.error().context);
  if (r) r = control::send_datagram(u.worker->ctl.native_handle(), *bytes, c.fd.get());
  if (!r) {
    log()->warn("handoff to worker failed user={} error={}", u.user.name, r.error().to_string());
    mask_via_gate(std::move(c.handoff), std::move(c.fd));
    touch(u);
    return;
  }
  ++u.sent;
  u.note_unreported(false, c.handoff.peer);
  touch(u);
  ++u.handed_total;
  ++handoffs_total_;
}

void Daemon::drain_held(UserRt& u) {
  while (!u.held.empty() && can_admit(u)) {
    HeldConn c = std::move(u.held.front());
    u.held.pop_front();
    forward(u, std::move(c));
  }
  touch(u);
}

void Daemon::on_gate_handoff(control::GateHandoff h, base::UniqueFd fd) {
  const auto now = Clock::now();
  UserRt* found = users_.find(static_cast<UserId>(h.user));
  if (!found || !servable(*found, wall_now()) || found->state == UserState::kFailed ||
      found->state == UserState::kDisabled) {
    mask_via_gate(std::move(h.handoff), std::move(fd));
    return;
  }
  UserRt& u = *found;
  u.ips[client_key(h.handoff.peer)] = now;
  u.last_activity = now;
  u.last_seen = wall_now();
  if (u.state == UserState::kIdle) {
    log()->info("on-demand start user={}", u.user.name);
    start_user(u);
    if (u.state == UserState::kFailed) {
      mask_via_gate(std::move(h.handoff), std::move(fd));
      return;
    }
  }
  HeldConn c{std::move(h.handoff), std::move(fd),
             now + std::chrono::milliseconds(cfg_.connections.hold_timeout_ms)};
  if (u.held.empty() && can_admit(u)) {
    forward(u, std::move(c));
    return;
  }
  std::size_t limit = cfg_.connections.hold_queue_length;
  // A starting (or restarting) worker: hold the first connections until it
  // is ready, even when holding for caps is off.
  if (u.state != UserState::kRunning) {
    limit = std::max<std::size_t>(limit, 16);
    c.deadline =
        std::max(c.deadline, now + std::chrono::milliseconds(cfg_.timeouts.worker_ready_ms));
  }
  if (u.held.size() < limit) {
    u.held.push_back(std::move(c));
    touch(u);
    if (u.worker && u.worker->ready) request_report(*u.worker);  // learn about closes sooner
    return;
  }
  ++u.refused;
  touch(u);
  log()->debug("connection refused user={} reason=hold_queue_full", u.user.name);
  mask_via_gate(std::move(c.handoff), std::move(c.fd));
}

void Daemon::housekeeping() {
  const auto now = Clock::now();
  for (auto& [id, up] : users_) {
    UserRt& u = *up;
    if (!u.held.empty()) {
      drain_held(u);
      while (!u.held.empty() && u.held.front().deadline <= now) {
        ++u.refused;
        mask_via_gate(std::move(u.held.front().handoff), std::move(u.held.front().fd));
        u.held.pop_front();
      }
      touch(u);
      if (!u.held.empty() && u.worker && u.worker->ready) request_report(*u.worker);
    }
    if (u.state == UserState::kStarting && u.worker && !u.worker->ready &&
        now - u.worker->started > std::chrono::milliseconds(cfg_.timeouts.worker_ready_ms)) {
      log()->warn("worker not ready in time, restarting user={}", u.user.name);
      (void)u.worker->proc.kill(SIGKILL);
    }
  }
  gate_.send_table_if_dirty();
  if (!ready_sent_) maybe_ready();
  if (egress_) egress_->poll_drops();
  mask_.tick(wall_now());
  if (egress_) egress_->follow_users();
}

void Daemon::rebalance() {
  if (cfg_.connections.global_budget == 0) {
    for (auto& [id, u] : users_) u->allowance = 0;
    refresh_lanes();
    return;
  }
  std::vector<ConnectionDemand> demand;
  std::vector<UserRt*> who;
  for (auto& [id, u] : users_) {
    if (!u->worker) continue;
    demand.push_back(
        {u->active() + static_cast<std::uint32_t>(u->held.size()), u->limits.max_connections});
    who.push_back(u.get());
  }
  auto share = fair_share(cfg_.connections.global_budget, demand);
  for (std::size_t i = 0; i < who.size(); ++i) who[i]->allowance = share[i];
  for (UserRt* u : who) drain_held(*u);
  refresh_lanes();
}

// ---- accounting and policy ---------------------------------------------------

void Daemon::sweep() {
  if (!stopping_ && request_counters()) return;  // finish_sweep runs when the snapshot arrives
  // Shutdown's final bill (the workers have stopped) or no poller thread:
  // dump here. A snapshot still under way is older than this one: drop it.
  // (Its time and CPU then count in apply_ms and the sweep's own CPU.)
  ++sweep_gen_;
  finish_sweep([this](const netns::CellHost::CounterFn& fn) { return host_->sweep(fn); }, 0.0,
               std::chrono::nanoseconds(0));
}

bool Daemon::request_counters() {
  if (!poller_ && !poller_failed_) {
    auto p = netns::CounterPoller::start();
    if (!p) {
      poller_failed_ = true;
      log()->warn("counter thread not started, dumping on the event loop error={}",
                  p.error().to_string());
      return false;
    }
    poller_ = std::move(*p);
  }
  if (!poller_) return false;
  // Counters are cumulative: a skipped sweep is billed by the next one.
  if (poller_->busy()) {
    log()->warn("counter dump still running after a sweep interval, sweep skipped");
    return true;
  }
  const std::uint64_t gen = ++sweep_gen_;
  (void)poller_->request([this, gen](base::Result<netns::CounterSnapshot> snap) {
    // Poller thread: hand over only. The loop applies it by ifindex as the
    // cells are then (CellHost::apply), so a cell torn down meanwhile is
    // never billed with a stranger's counters.
    auto shared = std::make_shared<base::Result<netns::CounterSnapshot>>(std::move(snap));
    asio::post(io_, [this, gen, shared] {
      if (stopping_ || gen != sweep_gen_ || !host_) return;
      const auto& r = *shared;
      const double dump_ms = r ? std::chrono::duration<double, std::milli>(r->wall).count() : 0.0;
      if (dump_ms > 50.0)
        log()->info("slow counter dump (off the event loop) dump_ms={:.1f} links={}", dump_ms,
                    r->links.size());
      finish_sweep(
          [&](const netns::CellHost::CounterFn& fn) -> base::Result<void> {
            if (!r) return tl::unexpected(r.error());
            host_->apply(*r, &fn);
            return {};
          },
          dump_ms, r ? r->cpu : std::chrono::nanoseconds(0));
    });
  });
  return true;
}

void Daemon::finish_sweep(
    const std::function<base::Result<void>(const netns::CellHost::CounterFn&)>& read,
    double dump_ms, std::chrono::nanoseconds dump_cpu) {
  const std::uint64_t cpu0 = cpu_ns();
  const auto wall0 = Clock::now();
  auto since = [](Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t).count() / 1000.0;
  };
  const UnixSeconds now = wall_now();
  const double interval_s = cfg_.accounting.sweep_interval_ms / 1000.0;
  for (auto& [id, u] : users_) {
    u->rate_bps_up = u->rate_bps_down = 0;
    if (check_period(u->period, u->limits, now).changed) policy_.apply(*u, now);
  }
  auto r = read([&](const std::string& host_if, const netns::CellCounters& c) {
    UserRt* found = users_.find_by_host_if(host_if);
    if (!found) return;
    ledger_.read(*found, CellBytes{c.upload_bytes, c.download_bytes});
  });
  if (!r) log()->warn("counter sweep failed error={}", r.error().to_string());
  const std::size_t deltas = ledger_.bill(interval_s);
  bandwidth_.divide();  // the policy below gives the shapers the new shares
  const double apply_ms = since(wall0);
  const auto store0 = Clock::now();
  if (auto s = ledger_.commit(now); !s) {
    log()->error("usage not stored, kept for the next sweep users={} error={}", ledger_.pending(),
                 s.error().to_string());
  }
  // After the commit: the fleet totals include this host's stored bytes.
  if (fleet_usage_) fleet_usage_->refresh(*store_, users_, Clock::now());
  if (fleet_) fleet_->refresh(*store_, now, Clock::now());
  const double store_ms = since(store0);
  const auto policy0 = Clock::now();
  expire_secrets(now);
  const auto steady = Clock::now();
  for (auto& [id, up] : users_) {
    UserRt& u = *up;
    if (u.state != UserState::kDisabled && u.user.expires_at && *u.user.expires_at <= now) {
      teardown_user(u, UserState::kDisabled, "expired");
      event(id, "user_expired", "");
      gate_.table_changed();
      continue;
    }
    policy_.apply(u, now);
    // Activity = clients, not veth bytes: a cell's own background packets
    // (IPv6 router solicitations and MLD reports, backing off for an hour)
    // would otherwise keep an idle cell up.
    if (u.active() > 0 || !u.held.empty()) u.last_activity = steady;
    if (u.limits.on_demand && u.state == UserState::kRunning && u.active() == 0 && u.held.empty() &&
        steady - u.last_activity > std::chrono::seconds(u.limits.idle_teardown_s)) {
      // Close the lane first and tear down only a sweep (>= 250 ms) later: a
      // client the gate sent over the lane meanwhile is told within 100 ms
      // and makes the user active again instead of dying with the worker.
      if (!u.idle_closing) {
        u.idle_closing = true;
        u.idle_closing_since = steady;
        close_lane(u);
      } else if (steady - u.idle_closing_since >= std::chrono::milliseconds(250)) {
        u.idle_closing = false;
        teardown_user(u, UserState::kIdle, "idle");
        event(id, "user_idle", "cell torn down after idle time");
      }
      continue;
    }
    u.idle_closing = false;
    // Reports are detail, not billing: each worker is asked every few sweeps
    // (spread by user id) instead of all every sweep, which at 1,000 users
    // cost more than the counter dump itself; a worker with no connection
    // (none open, none in flight) has nothing new to say and is asked once
    // a minute, so idle workers are not woken. Held connections trigger
    // faster requests from the 100 ms tick.
    const std::uint64_t every = u.active() > 0 ? kReportEvery : kIdleReportEvery;
    if (u.worker && u.worker->ready && (sweeps_ + static_cast<std::uint64_t>(id)) % every == 0) {
      request_report(*u.worker);
    }
  }
  gate_.request_report();
  gate_.send_table_if_dirty();
  refresh_lanes();  // reports, expiry and quota may have changed what lanes may take
  if (sweeps_ % 3600 == 0) {
    if (auto p = store_->prune(now, cfg_.accounting.history_days); !p) {
      log()->warn("history prune failed error={}", p.error().to_string());
    }
  }
  ++sweeps_;
  const double policy_ms = since(policy0);
  const auto status0 = Clock::now();
  // status.json holds every user: with many users write it less often (the
  // API serves the same state live).
  const std::uint64_t every = std::max<std::uint64_t>(1, users_.cells() / 1000);
  if (sweeps_ % every == 0) write_status();
  sweep_cpu_ += std::chrono::nanoseconds(cpu_ns() - cpu0) + dump_cpu;
  // This part runs on the event loop: a slow one delays every handshake.
  if (const double total = since(wall0); total > 50.0) {
    log()->warn(
        "slow sweep wall_ms={:.1f} apply_ms={:.1f} store_ms={:.1f} policy_ms={:.1f} "
        "status_ms={:.1f} deltas={} "
        "dump_ms={:.1f}",
        total, apply_ms, store_ms, policy_ms, since(status0), deltas, dump_ms);
  }
}

// One user's object in the status file.
void Daemon::append_status_user(std::ostream& o, UserId id, const UserRt& u) const {
  o << "{\"id\":" << id << ",\"name\":" << json_str(u.user.name)
    << ",\"state\":" << json_str(user_state_name(u.state))
    << ",\"fail_reason\":" << json_str(u.fail_reason)
    << ",\"mode\":" << json_str(supervisor::middle_mode_name(middle_.mode_of(u)))
    << ",\"enabled\":" << (u.user.enabled ? "true" : "false")
    << ",\"pid\":" << (u.worker && !u.worker->gone ? u.worker->proc.pid() : 0)
    << ",\"uid\":" << (u.uid_slot ? cfg_.cells.uid_first + 1 + *u.uid_slot : 0)
    << ",\"restarts\":" << u.restarts;
  if (u.cell) {
    o << ",\"cell\":{\"netns\":" << json_str(u.cell->names().netns)
      << ",\"host_if\":" << json_str(u.cell->names().host_if)
      << ",\"ipv4\":" << json_str(netns::to_string(u.cell->addrs().cell4))
      << ",\"rate_up_bps\":" << u.cell->rates().upload.bits_per_sec
      << ",\"rate_down_bps\":" << u.cell->rates().download.bits_per_sec << "}";
  }
  o << ",\"active\":" << u.active() << ",\"held\":" << u.held.size() << ",\"refused\":" << u.refused
    << ",\"sent\":" << u.sent << ",\"unique_ips\":" << u.unique_ips
    << ",\"online\":" << (u.online() ? "true" : "false") << ",\"last_seen\":" << u.seen(wall_now())
    << ",\"quota_state\":" << json_str(quota_state_name(u.quota))
    << ",\"throttled\":" << (u.rate.reasons.any() ? "true" : "false")
    << ",\"throttle_reason\":" << json_str(u.rate.reason_text)
    << ",\"rate_up_bps\":" << u.rate.up_bps << ",\"rate_down_bps\":" << u.rate.down_bps
    << ",\"period_start\":" << u.period.start << ",\"period_end\":" << u.period.end
    << ",\"usage_up\":" << u.period_usage.bytes_up
    << ",\"usage_down\":" << u.period_usage.bytes_down
    << ",\"quota_bytes\":" << u.limits.quota_bytes << ",\"measured_up_bps\":" << u.rate_bps_up
    << ",\"measured_down_bps\":" << u.rate_bps_down << ",\"share_up_bps\":" << u.share_up_bps
    << ",\"share_down_bps\":" << u.share_down_bps
    << ",\"bandwidth_weight\":" << u.limits.bandwidth_weight
    << ",\"egress_dropped\":" << u.egress_dropped;
  if (u.worker) o << ",\"worker\":" << ipc::counters_json(u.worker->counters);
  if (u.worker && !u.worker->upstreams.empty()) {
    o << ",\"upstreams\":[";
    for (std::size_t i = 0; i < u.worker->upstreams.size(); ++i) {
      const auto& up = u.worker->upstreams[i];
      o << (i ? "," : "") << "{\"name\":" << json_str(up.name)
        << ",\"up\":" << (up.up ? "true" : "false") << ",\"connects\":" << up.connects
        << ",\"failures\":" << up.failures << ",\"bytes_up\":" << up.bytes_up
        << ",\"bytes_down\":" << up.bytes_down << ",\"marked_down\":" << up.marked_down << "}";
    }
    o << "]";
  }
  o << "}";
}

void Daemon::write_status() {
  if (!store_) return;
  if (ready_sent_) notifier_.status(status_summary());
  const UnixSeconds now = wall_now();
  std::ostringstream o;
  std::size_t cells = 0, running = 0, throttled = 0, conns = 0;
  for (const auto& [id, u] : users_) {
    cells += u->cell ? 1 : 0;
    running += u->state == UserState::kRunning ? 1 : 0;
    throttled += u->rate.reasons.any() ? 1 : 0;
    conns += u->active();
  }
  o << "{\"version\":1,\"time\":" << now << ",\"pid\":" << ::getpid() << ",\"uptime_s\":"
    << std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started_at_).count()
    << ",\"users_total\":" << users_.size() << ",\"users_running\":" << running
    << ",\"users_throttled\":" << throttled << ",\"cells\":" << cells
    << ",\"connections\":" << conns << ",\"masked_total\":" << masked_total_
    << ",\"handoffs_total\":" << handoffs_total_ << ",\"direct_handoffs_total\":" << direct_total_
    << ",\"sweeps\":" << sweeps_ << ",\"sweep_cpu_ns_total\":" << sweep_cpu_.count()
    << ",\"memory_bound\":" << json_str(memory_bound_mode_name(memory_plan_.mode))
    << ",\"listeners\":[";
  for (std::size_t i = 0; i < listener_names_.size(); ++i)
    o << (i ? "," : "") << json_str(listener_names_[i]);
  o << "],";
  mask_.append_status(o);
  o << "\"gate\":{";
  if (const ChildProc* g = gate_.child()) {
    o << "\"pid\":" << (g->gone ? 0 : g->proc.pid())
      << ",\"ready\":" << (g->ready ? "true" : "false") << ",\"restarts\":" << gate_.restarts()
      << ",\"counters\":" << ipc::counters_json(g->counters);
  }
  o << "},\"users\":[";
  bool first = true;
  for (const auto& [id, up] : users_) {
    // Idle on-demand users (no cell, nothing to say) are left out: with
    // 10,000 of them the file would cost more than the sweep.
    if (up->state == UserState::kIdle && up->held.empty()) continue;
    if (!first) o << ',';
    append_status_user(o, id, *up);
    first = false;
  }
  o << "]}\n";
  // Rewritten every sweep in the run directory: no fsync.
  if (auto r = base::write_file_atomic(cfg_.server.run_dir + "/status.json", o.str(), 0640,
                                       base::Durability::kNoFsync);
      !r)
    log()->warn("status file not written error={}", r.error().to_string());
}

}  // namespace mtw::daemon
