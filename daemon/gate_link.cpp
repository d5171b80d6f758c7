// The gate, the supervisor's side (gate_link.h).
#include "daemon/gate_link.h"

#include <sys/socket.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <utility>

#include "base/log.h"
#include "daemon/child_log_pipe.h"
#include "daemon/replay_file.h"
#include "ipc/control_socket.h"
#include "ipc/gate_table.h"
#include "supervisor/spawn.h"

#ifndef MTW_BUILD_GATE_BIN
#define MTW_BUILD_GATE_BIN ""
#endif

namespace mtw::daemon {
namespace {

namespace control = ipc::control;
using ipc::error_code;
using ipc::use_nothrow;
using supervisor::RestartPolicy;

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("supervisor");
  return l;
}

std::string ms(std::uint32_t v) { return std::to_string(v) + "ms"; }

std::string protocols_text(const proto::AllowedProtocols& p) {
  if (p == proto::AllowedProtocols{}) return "all";
  std::string s;
  auto add = [&](bool on, const char* n) {
    if (!on) return;
    if (!s.empty()) s += ",";
    s += n;
  };
  add(p.abridged, "abridged");
  add(p.intermediate, "intermediate");
  add(p.padded, "secure");
  add(p.fake_tls, "tls");
  return s;
}

}  // namespace

GateLink::GateLink(asio::io_context& io, const supervisor::Config& cfg, const UserRegistry& users,
                   Options opts, Hooks hooks)
    : io_(io), cfg_(cfg), users_(users), opts_(std::move(opts)), hooks_(std::move(hooks)) {}

void GateLink::add_listener(base::UniqueFd fd, proto::AllowedProtocols protocols) {
  listeners_.push_back(std::move(fd));
  listener_protocols_.push_back(protocols);
}

std::vector<std::string> GateLink::argv() const {
  std::vector<std::string> a = {find_child_bin(opts_.bin, "mtwarden-gate", MTW_BUILD_GATE_BIN),
                                "--control-fd", "3"};
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    a.push_back("--listen-fd");
    a.push_back(std::to_string(4 + i) + ":" + std::to_string(i) + ":" +
                protocols_text(listener_protocols_[i]));
  }
  const auto mask = supervisor::mask_flags(cfg_, true);
  a.insert(a.end(), mask.begin(), mask.end());
  a.insert(a.end(), {"--mask-discard-timeout", ms(cfg_.mask.discard_timeout_ms),
                     "--handshake-timeout", ms(cfg_.timeouts.handshake_ms), "--per-ip-rate",
                     std::to_string(cfg_.connections.per_ip_rate), "--log-level",
                     opts_.log_level.empty() ? cfg_.server.log_level : opts_.log_level});
  const auto& adm = cfg_.connections.admission;
  a.insert(a.end(), {"--silent-timeout", ms(adm.silent_timeout_ms), "--source-handshakes",
                     std::to_string(adm.source_handshakes), "--subnet-handshakes",
                     std::to_string(adm.subnet_handshakes), "--ipv6-source-prefix",
                     std::to_string(adm.ipv6_source_prefix), "--ipv6-subnet-prefix",
                     std::to_string(adm.ipv6_subnet_prefix), "--ipv4-subnet-prefix",
                     std::to_string(adm.ipv4_subnet_prefix)});
  return a;
}

base::Result<void> GateLink::start() {
  restart_ = RestartPolicy(RestartPolicy::Options{
      std::chrono::milliseconds(cfg_.timeouts.restart_backoff_min_ms),
      std::chrono::milliseconds(cfg_.timeouts.restart_backoff_max_ms),
      std::chrono::milliseconds(cfg_.timeouts.crash_loop_window_ms), 1'000'000});
  if (!spawn_gate())
    return base::fail(base::Errc::kInternal, "the gate could not be started: " + last_error_);
  return {};
}

bool GateLink::spawn_gate() {
  if (stopping_) return false;
  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) {
    last_error_ = "socketpair failed: " + std::string(std::strerror(errno));
    log()->error("gate socketpair failed errno={}", errno);
    return false;
  }
  base::UniqueFd ours(sp[0]), theirs(sp[1]);
  supervisor::SpawnSpec spec;
  spec.argv = argv();
  spec.env = child_env();
  spec.uid = cfg_.cells.uid_first;
  spec.gid = cfg_.cells.gid_first;
  spec.nofile = nofile_within_limit(65'536);
  spec.nproc = kChildNproc;
  // RLIMIT_DATA in every memory-bound mode: one process whose heap is the
  // user table, the replay cache and handshake buffers.
  spec.rlimit_data_bytes = cfg_.cells.gate_memory_max_bytes;
  spec.fds = {{theirs.get(), 3}};
  const auto log_pipe = open_child_log_pipe(io_, "gate");
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
  auto proc = supervisor::spawn(spec);
  if (!proc) {
    last_error_ = proc.error().to_string();
    log()->error("gate spawn failed error={}", last_error_);
    auto g = std::make_shared<ChildProc>(io_);
    g->started = Clock::now();
    g->gone = true;
    gate_ = g;
    exited(g);
    return false;
  }
  auto g = adopt_child(io_, std::move(*proc), std::move(ours),
                       [this](const std::shared_ptr<ChildProc>& child, int status) {
                         log()->warn("gate exited status=\"{}\"",
                                     supervisor::describe_wait_status(status));
                         exited(child);
                       });
  if (log_pipe) log_pipe->start("child=gate pid=" + std::to_string(g->pid));
  adopt(std::move(g));
  return true;
}

void GateLink::adopt(std::shared_ptr<ChildProc> g) {
  gate_ = g;
  log()->info("gate started pid={} uid={}", g->proc.pid(), cfg_.cells.uid_first);
  asio::co_spawn(io_, control_loop(g), ipc::LogExceptions{"gate control"});
  // Lane messages come in bursts (one per running user at a gate start).
  const int sndbuf = 4 << 20;
  (void)::setsockopt(g->ctl.native_handle(), SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
  send_table();
  hooks_.started();
  daemon::request_report(*g);
}

void GateLink::exited(const std::shared_ptr<ChildProc>& child) {
  if (gate_ != child) return;  // a gate already replaced
  hooks_.gone();
  if (stopping_) return;
  const bool planned = gate_ && gate_->stopping;
  auto d = planned ? RestartPolicy::Decision{}
                   : restart_.on_crash(gate_ ? gate_->started : Clock::now(), Clock::now());
  if (!planned) hooks_.event("gate_restarted", "");
  if (!timer_) timer_ = std::make_unique<asio::steady_timer>(io_);
  timer_->expires_after(d.delay);
  pending_restart_ = d.delay;
  timer_->async_wait([this](const error_code& ec) {
    if (ec) return;
    pending_restart_.reset();
    spawn_gate();
  });
}

void GateLink::send_table() {
  table_dirty_ = false;
  hooks_.users_changed();
  if (!alive()) return;
  const auto now = static_cast<supervisor::UnixSeconds>(::time(nullptr));
  std::string text;
  text.reserve(users_.size() * 80);
  for (const auto& [id, u] : users_) {
    if (!hooks_.servable(*u, now)) continue;
    for (const auto& s : u->user.secrets)
      ipc::append_gate_table_line(text, static_cast<std::uint32_t>(id), s);
  }
  auto fd = memfd_with("mtwarden-gate-table", text);
  if (!fd) {
    log()->error("gate table not sent error={}", fd.error().to_string());
    table_dirty_ = true;
    return;
  }
  if (auto r = send_to(*gate_, control::GateTable{++generation_}, fd->get()); !r) {
    log()->warn("gate table not sent error={}", r.error().to_string());
    table_dirty_ = true;
  }
}

base::Result<void> GateLink::send(const control::Message& m, int fd) {
  if (!gate_) return base::fail(base::Errc::kNotFound, "no gate");
  return send_to(*gate_, m, fd);
}

void GateLink::request_report() {
  if (gate_) daemon::request_report(*gate_);
}

void GateLink::terminate() {
  if (!gate_) return;
  gate_->stopping = true;
  (void)gate_->proc.kill(SIGTERM);
}

void GateLink::kill() {
  if (alive()) (void)gate_->proc.kill(SIGKILL);
}

void GateLink::release() {
  if (gate_) release_child(*gate_);
}

void GateLink::stop() {
  stopping_ = true;
  pending_restart_.reset();
  if (timer_) timer_->cancel();
}

awaitable<void> GateLink::control_loop(std::shared_ptr<ChildProc> g) {
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
        hooks_.handoff(std::move(*h), std::move((*got)->fds.front()));
      } else if (auto* d = std::get_if<control::GateDirect>(&*msg)) {
        hooks_.direct(*d);
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

}  // namespace mtw::daemon
