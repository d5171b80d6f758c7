// The gate, the supervisor's side: the one child in the host's namespace
// (uid_first), given the listening sockets and every servable user's
// secrets (the gate table), restarted after [timeouts] restart_backoff when
// it dies; its control loop passes identified clients (GateHandoff) and
// direct-lane batches (GateDirect) to the root and keeps its reports. A
// table change only marks the table dirty; the root sends it once per
// operation (send_table_if_dirty), so a batch of changes costs one table.
// What happens to a handed-off client, and the lanes' credit, stay with the
// root: they need the users' state and admission.
// Thread: the event loop only. Lifetime: made with the root; `io`, `cfg` and
// `users` are borrowed and outlive it. The control loop and the exit watch
// hold the ChildProc they serve, so a replaced gate's pending waits end
// harmlessly; the exit watch and the restart timer call back into the link,
// which lives until io_context's handlers are gone.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "daemon/children.h"
#include "daemon/user_registry.h"
#include "ipc/control_protocol.h"
#include "proto/identify.h"
#include "supervisor/backoff.h"
#include "supervisor/config.h"

namespace mtw::daemon {

class GateLink {
 public:
  struct Options {
    std::string bin;        // --gate-bin; empty: next to mtwarden, then the build tree's
    std::string log_level;  // --log-level; empty: [server] log_level at each start
  };
  struct Hooks {
    // Whether the user's secrets belong in the table now.
    std::function<bool(const UserRt&, supervisor::UnixSeconds)> servable;
    // The table is being sent: the users' fake-TLS domains may have changed.
    std::function<void()> users_changed;
    // An identified client and its socket: the root admits, holds or masks it.
    std::function<void(ipc::control::GateHandoff, base::UniqueFd)> handoff;
    // Clients the gate sent straight to workers over lanes.
    std::function<void(const ipc::control::GateDirect&)> direct;
    // A new gate runs and has the table: its lanes are to be opened afresh
    // (the old gate's lane ends died with it).
    std::function<void()> started;
    // The gate is gone (exited or never spawned): so are its lane ends.
    std::function<void()> gone;
    // A server event (kind, detail) for the event log.
    std::function<void(std::string_view, std::string_view)> event;
  };

  GateLink(asio::io_context& io, const supervisor::Config& cfg, const UserRegistry& users,
           Options opts, Hooks hooks);
  GateLink(const GateLink&) = delete;
  GateLink& operator=(const GateLink&) = delete;

  // A listening socket for the gate, fd 4 + its index in the gate; kept here
  // across gate restarts.
  void add_listener(base::UniqueFd fd, proto::AllowedProtocols protocols);
  std::size_t listeners() const noexcept { return listeners_.size(); }

  // The gate's command line from the configuration in force (the replay
  // file's --replay-fd is added at spawn when it can be opened).
  std::vector<std::string> argv() const;

  // The first gate, with the restart policy of [timeouts]. A gate that
  // cannot even be spawned is a start failure (kInternal), not something to
  // retry forever; later spawn failures are retried with backoff.
  [[nodiscard]] base::Result<void> start();
  // Takes a spawned gate as the current one (start's spawn ends here): its
  // control loop, the table, fresh lanes (Hooks::started) and a first
  // report request.
  void adopt(std::shared_ptr<ChildProc> g);
  // The exit watch saw `child` exit. Only the current gate counts: it is
  // restarted, at once after a planned stop (terminate()), else after the
  // policy's backoff, with a "gate_restarted" event.
  void exited(const std::shared_ptr<ChildProc>& child);

  // Some user's secrets or servability changed.
  void table_changed() noexcept { table_dirty_ = true; }
  bool table_dirty() const noexcept { return table_dirty_; }
  // The whole table as a new generation. With no live gate nothing is sent
  // and nothing stays dirty: the next gate gets the table at its start. A
  // table that could not be sent stays dirty (the next tick tries again).
  void send_table();
  void send_table_if_dirty() {
    if (table_dirty_) send_table();
  }
  // The generation of the last table sent (0: none yet).
  std::uint64_t generation() const noexcept { return generation_; }

  // A gate is there and not reaped.
  bool alive() const noexcept { return gate_ && !gate_->gone; }
  // The current gate answered its first report request.
  bool ready() const noexcept { return gate_ && gate_->ready; }
  // A gate process still to be reaped (shutdown waits for it).
  bool running() const noexcept { return alive() && gate_->proc.valid(); }
  // The current gate (null before start()), for status.
  const ChildProc* child() const noexcept { return gate_.get(); }
  // Unplanned restarts since start.
  std::uint32_t restarts() const noexcept { return restart_.restarts(); }
  // The wait before the next gate, set by the last exit; nullopt when no
  // restart is pending (a gate runs, or stop()).
  std::optional<std::chrono::milliseconds> pending_restart() const noexcept {
    return pending_restart_;
  }

  // One control message to the current gate: kNotFound when there is none
  // or its socket is closed, else send_to's result.
  [[nodiscard]] base::Result<void> send(const ipc::control::Message& m, int fd = -1);
  void request_report();
  // A planned stop (reload with new gate settings, shutdown): SIGTERM, and
  // its exit restarts it without counting a crash.
  void terminate();
  // SIGKILL to a gate still alive (shutdown's grace is over).
  void kill();
  // Closes the gate's sockets without waiting for it (shutdown).
  void release();
  // The supervisor is stopping: no restart, no new gate.
  void stop();

 private:
  bool spawn_gate();  // false when the spawn failed (the reason in last_error_)
  awaitable<void> control_loop(std::shared_ptr<ChildProc> g);

  asio::io_context& io_;
  const supervisor::Config& cfg_;
  const UserRegistry& users_;
  Options opts_;
  Hooks hooks_;
  std::vector<base::UniqueFd> listeners_;
  std::vector<proto::AllowedProtocols> listener_protocols_;
  std::shared_ptr<ChildProc> gate_;
  supervisor::RestartPolicy restart_{supervisor::RestartPolicy::Options{}};
  std::unique_ptr<asio::steady_timer> timer_;
  std::optional<std::chrono::milliseconds> pending_restart_;
  std::uint64_t generation_ = 0;
  bool table_dirty_ = false;
  bool stopping_ = false;
  std::string last_error_;
};

}  // namespace mtw::daemon
