// The workers: one per user, inside the user's cell with its own uid (what
// every child gets is in children.h; the gate is gate_link.h). Control
// sockets are SOCK_SEQPACKET socketpairs; a child's exit is seen through its
// pidfd. Anything malformed from a child is logged and that child restarted:
// children are never trusted (billing uses veth counters).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "base/log.h"
#include "daemon/child_log_pipe.h"
#include "daemon/daemon_impl.h"
#include "daemon/upstream_sync.h"
#include "ipc/control_socket.h"
#include "ipc/secrets_file.h"
#include "proto/secret.h"

namespace mtw::daemon {
namespace {

namespace control = ipc::control;

std::string ms(std::uint32_t v) { return std::to_string(v) + "ms"; }

}  // namespace

#ifndef MTW_BUILD_WORKER_BIN
#define MTW_BUILD_WORKER_BIN ""
#endif

MountViewInput Daemon::worker_mount_view() const {
  std::error_code ec;
  auto config = std::filesystem::absolute(opts_.config_path, ec);
  return MountViewInput{ec ? opts_.config_path : config.string(), cfg_.server.state_dir,
                        cfg_.server.run_dir, cfg_.cells.netns_dir, worker_argv().front()};
}

base::Result<void> Daemon::make_worker_mount_view() {
  const auto hide = worker_hidden_dirs(worker_mount_view());
  std::vector<std::string> detach;
  if (netns_dir_detachable(cfg_.cells.netns_dir)) detach.push_back(cfg_.cells.netns_dir);
  auto fd = make_mount_view(hide, detach);
  if (!fd) return base::fail(fd.error().code, "workers' mount view: " + fd.error().to_string());
  worker_mountns_ = std::move(*fd);
  std::string list;
  for (const auto& d : hide) list += (list.empty() ? "" : ",") + d;
  log()->info("worker mount view hidden={} detached={}", list,
              detach.empty() ? "-" : detach.front());
  return {};
}

std::vector<std::string> Daemon::worker_argv() const {
  std::vector<std::string> a = {
      find_child_bin(opts_.worker_bin, "mtwarden-worker", MTW_BUILD_WORKER_BIN), "--control-fd",
      "3", "--secrets-file", "/proc/self/fd/4", "--drain-timeout",
      ms(cfg_.timeouts.shutdown_grace_ms), "--stats-interval", "0",
      // The gate checks replays for every user before a handoff; the
      // worker's own cache is a second line and need not be large (a 64
      // Ki entry cache would be 1.3 MiB resident per idle user).
      "--replay-entries", "4096", "--log-level",
      opts_.log_level.empty() ? cfg_.server.log_level : opts_.log_level};
  // What a reload may change later (send_settings) is one list.
  const auto live = worker_live_flags(cfg_);
  a.insert(a.end(), live.begin(), live.end());
  // Middle-proxy mode starts with the Middle message (middle_link.h).
  a.insert(a.end(), {"--middle-pool", std::to_string(cfg_.middle.pool), "--middle-stall-timeout",
                     ms(cfg_.middle.stall_timeout_ms)});
  const auto public_ip =
      supervisor::middle_public_ip(cfg_.middle.public_ip, cfg_.server.public_host, looked_up_host_);
  if (!public_ip.empty()) a.insert(a.end(), {"--public-ip", public_ip});
  return a;
}

void Daemon::start_user(UserRt& u) {
  if (stopping_) return;
  if (!u.cell) {
    auto eff = effective_rate(u.limits, u.quota, u.unique_ips);
    auto cell = netns::Cell::create(*host_, netns::short_id(static_cast<std::uint64_t>(u.user.id)),
                                    shaper_rates(eff));
    if (!cell) {
      u.state = UserState::kFailed;
      touch(u);
      u.fail_reason = "cell: " + cell.error().to_string();
      log()->error("cell creation failed user={} error={}", u.user.name, cell.error().to_string());
      event(u.user.id, "user_failed", u.fail_reason);
      return;
    }
    u.cell.emplace(std::move(*cell));
    u.rate = eff;
    u.billed_bytes = {};
    users_.bind_cell(u);
  }
  // Before the worker: its first connection must already leave from its source.
  if (sources_) {
    if (auto r = sources_->cell_up(u.user.name, u.cell->names().host_if); !r)
      return fail_worker_start(u, "cell source: " + r.error().context);
  }
  spawn_worker(u);
}

bool Daemon::claim_uid_slot(UserRt& u) {
  if (users_.claim_uid_slot(u)) return true;
  fail_worker_start(u, "no free uid in [cells] uid_first/uid_count");
  return false;
}

void Daemon::fail_worker_start(UserRt& u, const std::string& why) {
  u.state = UserState::kFailed;
  touch(u);
  u.fail_reason = why;
  log()->error("worker not started user={} error=\"{}\"", u.user.name, why);
  event(u.user.id, "user_failed", why);
}

void Daemon::spawn_worker(UserRt& u) {
  if (!claim_uid_slot(u)) return;
  const uid_t uid = cfg_.cells.uid_first + 1 + *u.uid_slot;
  const gid_t gid = cfg_.cells.gid_first + 1 + *u.uid_slot;
  auto fail = [&](const std::string& why) { fail_worker_start(u, why); };
  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0)
    return fail("socketpair failed");
  base::UniqueFd ours(sp[0]), theirs(sp[1]);
  auto mem = memfd_with("mtwarden-secrets", ipc::format_secrets_file(u.user.secrets));
  if (!mem) return fail(mem.error().to_string());
  auto ns = u.cell->open_netns();
  if (!ns) return fail("open netns: " + ns.error().to_string());
  if (memory_plan_.mode == MemoryBoundMode::kCgroupV2 && !u.cgroup) {
    auto cg = WorkerCgroup::create(memory_plan_,
                                   "mtw-" + netns::short_id(static_cast<std::uint64_t>(u.user.id)) +
                                       "-" + std::to_string(++cgroup_seq_),
                                   cfg_.cells.worker_memory_max_bytes);
    if (!cg) return fail("cgroup: " + cg.error().to_string());
    u.cgroup.emplace(std::move(*cg));
  }
  // The user's upstreams with their credentials: a memfd, as the secrets.
  // The same builder makes the live egress message (send_egress).
  auto egress = egress_for(cfg_, u.user.name, assignment_of(u.user));
  if (!egress) return fail("egress: " + egress.error().context);
  std::string egress_text = egress_key(*egress);
  base::Result<base::UniqueFd> egress_mem = base::UniqueFd();
  if (!egress_text.empty()) {
    egress_mem = memfd_with("mtwarden-egress", egress_text);
    if (!egress_mem) return fail(egress_mem.error().to_string());
  }
  SpawnSpec spec;
  spec.argv = worker_argv();
  // A cell that leaves through its own source address (source_link.h) is
  // seen by the middle proxies at that address, which their key derivation
  // uses: it replaces the host's (a later change of the source reaches the
  // worker at its next start). A configured [middle] public_ip stays: the
  // operator knows of a NAT beyond this host.
  if (cfg_.middle.public_ip.empty() && sources_ && u.cell) {
    const auto& applied = sources_->applied();
    const auto it = applied.find(u.cell->names().host_if);
    const std::string ip =
        it == applied.end()
            ? std::string()
            : (cfg_.telegram.prefer_ipv6 && !it->second.addr6.empty() ? it->second.addr6
                                                                      : it->second.addr4);
    if (!ip.empty()) {
      auto flag = std::find(spec.argv.begin(), spec.argv.end(), "--public-ip");
      if (flag != spec.argv.end() && flag + 1 != spec.argv.end())
        *(flag + 1) = ip;
      else
        spec.argv.insert(spec.argv.end(), {"--public-ip", ip});
    }
  }
  spec.env = child_env();
  spec.netns_fd = ns->get();
  spec.uid = uid;
  spec.gid = gid;
  spec.nofile = nofile_within_limit(cfg_.cells.worker_nofile);
  spec.nproc = kChildNproc;
  spec.mountns_fd = worker_mountns_.get();
  if (memory_plan_.mode == MemoryBoundMode::kRlimit)
    spec.rlimit_data_bytes = cfg_.cells.worker_memory_max_bytes;
  if (u.cgroup) spec.cgroup_procs_fd = u.cgroup->procs_fd();
  spec.fds = {{theirs.get(), 3}, {mem->get(), 4}};
  const auto log_pipe = open_child_log_pipe(io_, "worker");
  if (log_pipe)
    spec.fds.insert(spec.fds.end(), {{log_pipe->child_fd(), 1}, {log_pipe->child_fd(), 2}});
  if (egress_mem->get() >= 0) {
    spec.argv.insert(spec.argv.end(), {"--egress-file", "/proc/self/fd/5"});
    spec.fds.push_back({egress_mem->get(), 5});
  }
  auto proc = spawn(spec);
  if (!proc) return fail("spawn: " + proc.error().to_string());
  if (log_pipe)
    log_pipe->start("child=worker user=" + u.user.name + " pid=" + std::to_string(proc->pid()));
  watch_worker(u, std::move(*proc), std::move(ours), uid);
  u.worker->egress_key = std::move(egress_text);
}

// The spawned worker becomes the user's: its control socket and exit are
// watched, and its first report is asked for.
void Daemon::watch_worker(UserRt& u, Process proc, base::UniqueFd ctl, uid_t uid) {
  const UserId id = u.user.id;
  auto w = adopt_child(io_, std::move(proc), std::move(ctl),
                       [this, id](const std::shared_ptr<ChildProc>& child, int status) {
                         if (egress_) egress_->release(*child);
                         on_worker_exit(id, child, status);
                       });
  if (egress_) egress_->acquire(*w);
  w->live_flags = worker_live_flags(cfg_);  // as worker_argv() gave them
  u.worker = w;
  u.sent = 0;
  u.direct_seen = 0;
  u.unreported.clear();
  u.worker_first_lane = 0;
  u.state = UserState::kStarting;
  touch(u);
  log()->info("worker started user={} pid={} uid={} cell={}", u.user.name, w->proc.pid(), uid,
              u.cell->names().netns);
  asio::co_spawn(io_, worker_loop(id, w), ipc::LogExceptions{"worker control"});
  request_report(*w);
}

void Daemon::note_middle_fallback(const UserRt& u, const ipc::Counters& before,
                                  const ipc::Counters& after) {
  const std::uint64_t was = before[ipc::Counter::kMiddleDown];
  const std::uint64_t now = after[ipc::Counter::kMiddleDown];
  if ((was == 0) == (now == 0)) return;
  const std::string detail = "clusters_down=" + std::to_string(now);
  if (now) {
    log()->warn("middle proxies failed, tagged clients go direct user={} {}", u.user.name, detail);
    event(u.user.id, "middle_fallback", detail);
  } else {
    log()->info("middle proxies answer again, tagged clients go through them user={}", u.user.name);
    event(u.user.id, "middle_restored", detail);
  }
}

awaitable<void> Daemon::worker_loop(UserId id, std::shared_ptr<ChildProc> w) {
  for (;;) {
    auto [ec] = co_await w->ctl.async_wait(asio::posix::descriptor_base::wait_read, use_nothrow);
    if (ec || w->gone) co_return;
    UserRt* found = users_.find(id);
    if (!found || found->worker != w) co_return;
    UserRt& u = *found;
    for (;;) {
      auto got = control::recv_datagram(w->ctl.native_handle(), true);
      if (!got) {
        if (got.error().sys_errno == EAGAIN) break;
        log()->warn("worker control receive failed user={} error={}", u.user.name,
                    got.error().to_string());
        break;
      }
      if (!*got) co_return;
      auto msg = control::decode((*got)->bytes, (*got)->fds.size());
      auto* rep = msg ? std::get_if<control::Report>(&*msg) : nullptr;
      std::string why;
      if (!msg)
        why = "malformed message: " + msg.error().to_string();
      else if (!rep)
        why = "unexpected message type " + std::to_string(static_cast<int>(control::type_of(*msg)));
      else if (rep->seq <= w->report_seq)
        why = "report sequence did not increase (" + std::to_string(rep->seq) + " after " +
              std::to_string(w->report_seq) + ")";
      if (!why.empty()) {
        log()->warn("worker misbehaved, restarting it user={} reason=\"{}\"", u.user.name, why);
        event(id, "worker_misbehaved", why);
        (void)w->proc.kill(SIGKILL);
        co_return;
      }
      w->report_seq = rep->seq;
      log_seccomp_denials("worker", u.user.name, w->counters, rep->counters);
      note_middle_fallback(u, w->counters, rep->counters);
      w->counters = rep->counters;
      record_upstream_transitions(u, w->upstreams, rep->upstreams);
      w->upstreams = std::move(rep->upstreams);
      w->clients = std::move(rep->clients);
      u.drop_reported();
      if (w->clients)
        u.last_seen = supervisor::seen_after_report(u.last_seen, wall_now(),
                                                    rep->counters[ipc::Counter::kActive],
                                                    w->clients->last_close_unix);
      touch(u);
      if (!w->ready) {
        w->ready = true;
        u.state = UserState::kRunning;
        touch(u);
        log()->info("worker ready user={} pid={} after_ms={}", u.user.name, w->proc.pid(),
                    std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - w->started)
                        .count());
        middle_.send(u, true);  // before its first client
        send_settings(u);       // a reload since its start changed them
        send_egress(u);         // the same for its upstreams, or an API change
        drain_held(u);
        refresh_lane(u);  // after the held ones: they came first
        continue;
      }
      drain_held(u);
    }
  }
}

void Daemon::send_settings(UserRt& u) {
  if (!u.worker || !u.worker->ready || u.worker->gone) return;
  auto live = worker_live_flags(cfg_);
  if (live == u.worker->live_flags) return;
  control::Settings st{++settings_generation_, live};
  if (auto s = send_to(*u.worker, st); !s) {
    // Its new connections keep the old settings; the next reload or its
    // next start brings the new ones.
    log()->warn("settings not sent user={} error={}", u.user.name, s.error().to_string());
    return;
  }
  u.worker->live_flags = std::move(live);
  log()->info("settings sent user={} generation={}", u.user.name, st.generation);
}

void Daemon::send_egress(UserRt& u) {
  // Its cell's source follows its upstreams too (docs/cells.md).
  if (sources_ && u.cell) sources_->refresh(u.user.name, u.cell->names().host_if);
  if (!u.worker || !u.worker->ready || u.worker->gone) return;
  auto spec = egress_for(cfg_, u.user.name, assignment_of(u.user));
  if (!spec) {
    // Checked before it was stored or the file taken; a file edited while
    // the supervisor was down can still leave it so. Its worker keeps its egress.
    log()->warn("egress not sent user={} error=\"{}\"", u.user.name, spec.error().context);
    return;
  }
  std::string key = egress_key(*spec);
  if (key == u.worker->egress_key) return;
  std::string names;
  for (const auto& up : spec->upstreams) names += (names.empty() ? "" : ",") + up.name;
  // An empty list is "direct" for the worker: the text is sent either way.
  auto mem = memfd_with("mtwarden-egress", proto::format_egress(*spec));
  const control::Egress msg{++egress_generation_};
  auto sent =
      mem ? send_to(*u.worker, msg, mem->get()) : base::Result<void>(tl::unexpected(mem.error()));
  if (!sent) {
    log()->warn("egress not delivered, restarting worker user={} error={}", u.user.name,
                sent.error().to_string());
    (void)u.worker->proc.kill(SIGKILL);
    return;
  }
  u.worker->egress_key = std::move(key);
  log()->info("egress sent user={} generation={} upstreams={}", u.user.name, msg.generation,
              names.empty() ? "direct" : names);
}

void Daemon::record_upstream_transitions(UserRt& u,
                                         const std::vector<control::UpstreamReport>& before,
                                         const std::vector<control::UpstreamReport>& after) {
  for (const auto& t : upstream_transitions(before, after))
    event(u.user.id, transition_kind(t), transition_detail(t));
}

void Daemon::send_reload_secrets(UserRt& u) {
  control::Reload r;
  for (const auto& hex : u.user.secrets) {
    auto s = proto::parse_secret(hex);
    if (!s) continue;
    auto bytes = proto::from_hex(proto::format_hex(*s));
    if (bytes) r.secrets.push_back(std::move(*bytes));
  }
  if (auto res = send_to(*u.worker, r); !res) {
    log()->warn("secret reload not delivered, restarting worker user={} error={}", u.user.name,
                res.error().to_string());
    (void)u.worker->proc.kill(SIGKILL);
  }
}

std::shared_ptr<ChildProc> Daemon::stop_worker(UserRt& u) {
  if (u.restart_timer) u.restart_timer->cancel();
  close_lane(u);
  if (!u.worker) return nullptr;
  if (u.active() > 0) u.last_seen = wall_now();  // its connections end now
  auto w = std::move(u.worker);
  u.unreported.clear();
  touch(u);
  w->stopping = true;
  error_code ec;
  w->ctl.close(ec);
  // Tearing down means the user's connections end: no grace to wait for.
  // Nothing here waits for the exit: exit_watch reaps the child when its
  // pidfd turns readable (it holds `w` until then) and, the worker no longer
  // being the user's, on_worker_exit ignores it. A child stuck in the kernel
  // therefore stalls no other user's events.
  (void)w->proc.kill(SIGKILL);
  return w;
}

void Daemon::teardown_user(UserRt& u, UserState next, std::string_view why) {
  const std::shared_ptr<ChildProc> dying = stop_worker(u);
  for (auto& h : u.held) mask_via_gate(std::move(h.handoff), std::move(h.fd));
  u.held.clear();
  if (u.cell) {
    if (sources_) sources_->cell_gone(u.cell->names().host_if);
    if (auto r = u.cell->destroy(); !r) {
      log()->warn("cell teardown failed user={} error={}", u.user.name, r.error().to_string());
    }
    users_.unbind_cell(u);
  }
  // The cgroup goes when the killed worker is reaped. The uid slot is free
  // now: a SIGKILLed process runs no more code under that uid.
  if (dying && u.cgroup && !dying->gone) dying->cgroup = std::move(u.cgroup);
  u.cgroup.reset();
  users_.release_uid_slot(u);
  u.state = next;
  touch(u);
  u.billed_bytes = {};
  log()->info("user torn down user={} reason={}", u.user.name, why);
}

void Daemon::on_worker_exit(UserId id, const std::shared_ptr<ChildProc>& w, int status) {
  UserRt* found = users_.find(id);
  if (!found || found->worker != w || stopping_) return;
  UserRt& u = *found;
  if (u.active() > 0) u.last_seen = wall_now();  // its connections ended with it
  u.worker.reset();
  u.unreported.clear();
  close_lane(u);  // touches
  if (w->stopping) return;
  const auto now = Clock::now();
  auto d = u.restart.on_crash(w->started, now);
  ++u.restarts;
  log()->warn("worker exited user={} pid={} status=\"{}\" restart_in_ms={} failed={}", u.user.name,
              w->pid, describe_wait_status(status), d.delay.count(), d.failed);
  event(id, "worker_crashed", describe_wait_status(status));
  if (d.failed) {
    u.state = UserState::kFailed;
    u.fail_reason = "crash loop: " + std::to_string(cfg_.timeouts.crash_loop_restarts) +
                    " crashes within " + std::to_string(cfg_.timeouts.crash_loop_window_ms) + " ms";
    event(id, "user_failed", u.fail_reason);
    for (auto& h : u.held) mask_via_gate(std::move(h.handoff), std::move(h.fd));
    u.held.clear();
    touch(u);
    return;
  }
  u.state = UserState::kBackoff;
  touch(u);
  if (!u.restart_timer) u.restart_timer = std::make_unique<asio::steady_timer>(io_);
  u.restart_timer->expires_after(d.delay);
  u.restart_timer->async_wait([this, id](const error_code& ec) {
    if (ec || stopping_) return;
    UserRt* again = users_.find(id);
    if (!again || again->state != UserState::kBackoff || !again->cell) return;
    event(id, "worker_restarted", "");
    spawn_worker(*again);
  });
}

}  // namespace mtw::daemon
