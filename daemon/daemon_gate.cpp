// The gate: the one child in the host's namespace (uid_first, the listening
// sockets), told every user's secrets, restarted when it dies; a gate that
// cannot be spawned at start stops the start.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "base/log.h"
#include "daemon/child_log_pipe.h"
#include "daemon/daemon_impl.h"
#include "daemon/replay_file.h"
#include "ipc/control_socket.h"
#include "ipc/gate_table.h"

namespace mtw::daemon {

namespace control = ipc::control;

bool Daemon::start_gate() {
  if (stopping_) return false;
  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) {
    last_gate_error_ = "socketpair failed: " + std::string(std::strerror(errno));
    log()->error("gate socketpair failed errno={}", errno);
    return false;
  }
  base::UniqueFd ours(sp[0]), theirs(sp[1]);
  SpawnSpec spec;
  spec.argv = gate_argv();
  spec.env = child_env();
  spec.uid = cfg_.cells.uid_first;
  spec.gid = cfg_.cells.gid_first;
  spec.nofile = nofile_within_limit(65'536);
  spec.nproc = kChildNproc;
  // RLIMIT_DATA in every memory-bound mode: one process whose heap is the
  // user table, the replay cache and handshake buffers.
  spec.rlimit_data_bytes = cfg_.cells.gate_memory_max_bytes;
  spec.fds = {{theirs.get(), 3}};
  const auto log_pipe = child_log_pipe("gate");
  if (log_pipe)
    spec.fds.insert(spec.fds.end(), {{log_pipe->child_fd(), 1}, {log_pipe->child_fd(), 2}});
  for (std::size_t i = 0; i < listeners_.size(); ++i)
    spec.fds.emplace_back(listeners_[i].get(), static_cast<int>(4 + i));
  // Replay cache across restarts (daemon/replay_file.h): the fd after the listeners.
  base::UniqueFd replay_fd;
  if (cfg_.connections.replay_persist) {
    if (auto f = open_replay_file(cfg_.server.state_dir); f) {
      replay_fd = std::move(*f);
      const int n = static_cast<int>(4 + listeners_.size());
      spec.fds.emplace_back(replay_fd.get(), n);
      spec.argv.insert(spec.argv.end(), {"--replay-fd", std::to_string(n)});
    } else {
      log()->warn("replay file not used error=\"{}\"", f.error().to_string());
    }
  }
  auto proc = spawn(spec);
  if (!proc) {
    last_gate_error_ = proc.error().to_string();
    log()->error("gate spawn failed error={}", last_gate_error_);
    auto g = std::make_shared<ChildProc>(io_);
    g->started = Clock::now();
    g->gone = true;
    gate_ = g;
    on_gate_exit();
    return false;
  }
  auto g = adopt_child(io_, std::move(*proc), std::move(ours),
                       [this](const std::shared_ptr<ChildProc>& child, int status) {
                         log()->warn("gate exited status=\"{}\"", describe_wait_status(status));
                         if (gate_ == child) on_gate_exit();
                       });
  if (log_pipe) log_pipe->start("child=gate pid=" + std::to_string(g->pid));
  gate_ = g;
  log()->info("gate started pid={} uid={}", g->proc.pid(), cfg_.cells.uid_first);
  asio::co_spawn(io_, gate_loop(g), ipc::LogExceptions{"gate control"});
  // Lane messages come in bursts (one per running user at a gate start).
  const int sndbuf = 4 << 20;
  (void)::setsockopt(g->ctl.native_handle(), SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
  send_gate_table();
  forget_lanes();  // the old gate's lane ends died with it
  refresh_lanes();
  request_report(*g);
  return true;
}

void Daemon::on_gate_exit() {
  forget_lanes();
  if (stopping_) return;
  const bool planned = gate_ && gate_->stopping;
  auto d = planned ? RestartPolicy::Decision{}
                   : gate_restart_.on_crash(gate_ ? gate_->started : Clock::now(), Clock::now());
  if (!planned) event(std::nullopt, "gate_restarted", "");
  if (!gate_timer_) gate_timer_ = std::make_unique<asio::steady_timer>(io_);
  gate_timer_->expires_after(d.delay);
  gate_timer_->async_wait([this](const error_code& ec) {
    if (!ec) start_gate();
  });
}

void Daemon::send_gate_table() {
  gate_table_dirty_ = false;
  mask_.users_changed();                  // the users' fake-TLS domains may have changed
  if (egress_) egress_->users_changed();  // and with them the cells' mask destinations
  if (!gate_ || gate_->gone) return;
  const UnixSeconds now = static_cast<UnixSeconds>(::time(nullptr));
  std::string text;
  text.reserve(users_.size() * 80);
  for (const auto& [id, u] : users_) {
    if (!servable(*u, now)) continue;
    for (const auto& s : u->user.secrets)
      ipc::append_gate_table_line(text, static_cast<std::uint32_t>(id), s);
  }
  auto fd = memfd_with("mtwarden-gate-table", text);
  if (!fd) {
    log()->error("gate table not sent error={}", fd.error().to_string());
    gate_table_dirty_ = true;
    return;
  }
  if (auto r = send_to(*gate_, control::GateTable{++gate_generation_}, fd->get()); !r) {
    log()->warn("gate table not sent error={}", r.error().to_string());
    gate_table_dirty_ = true;
  }
}

awaitable<void> Daemon::gate_loop(std::shared_ptr<ChildProc> g) {
  for (;;) {
    auto [ec] = co_await g->ctl.async_wait(asio::posix::descriptor_base::wait_read, use_nothrow);
    if (ec || g->gone) co_return;
    for (;;) {
      auto got = control::recv_datagram(g->ctl.native_handle(), true);
      if (!got) {
        if (got.error().sys_errno == EAGAIN) break;
        log()->warn("gate control receive failed error={}", got.error().to_string());
        break;
      }
      if (!*got) co_return;  // closed; the exit watcher restarts it
      auto msg = control::decode((*got)->bytes, (*got)->fds.size());
      if (!msg) {
        log()->warn("gate sent a malformed message, restarting it error={}",
                    msg.error().to_string());
        (void)g->proc.kill(SIGKILL);
        co_return;
      }
      if (auto* h = std::get_if<control::GateHandoff>(&*msg)) {
        on_gate_handoff(std::move(*h), std::move((*got)->fds.front()));
      } else if (auto* d = std::get_if<control::GateDirect>(&*msg)) {
        on_gate_direct(*d);
      } else if (auto* r = std::get_if<control::Report>(&*msg)) {
        log_seccomp_denials("gate", "", g->counters, r->counters);
        g->counters = r->counters;
        g->report_seq = r->seq;
        g->ready = true;
      } else {
        log()->warn("gate sent an unexpected message type, restarting it");
        (void)g->proc.kill(SIGKILL);
        co_return;
      }
    }
  }
}

// ---- workers ---------------------------------------------------------------

}  // namespace mtw::daemon
