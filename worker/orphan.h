// A managed worker's relation to its controller when it may outlive it
// (--orphan-timeout; docs/worker-control.md, "Surviving the supervisor"):
// the pure decisions: drain or wait when the control socket closes, until
// when to wait, and who may take the worker over on its re-attach socket.
// The I/O (timer, accept, SO_PEERCRED) is in control_loop.cpp.
// Thread-safety: plain values; one thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>

namespace mtw::worker {

// Root, or the uid of the worker's first controller (`parent_uid`: the
// SO_PEERCRED of the inherited control socket, i.e. of whoever made that
// socketpair; under the supervisor, root too). Not the worker's own uid:
// after a supervisor restart that did not re-adopt it, its uid slot may be
// another user's worker's. Anyone else is refused, so a user's worker
// cannot be taken over (its handoffs, secrets, limits) by another local user.
[[nodiscard]] bool controller_allowed(uid_t peer_uid, uid_t parent_uid) noexcept;

class Orphanage {
 public:
  using Clock = std::chrono::steady_clock;
  enum class OnClose {
    kDrain,     // surviving is off (timeout 0) or a drain already runs: drain, as before
    kOrphaned,  // keep relaying; wait for a new controller until deadline()
  };

  explicit Orphanage(std::uint32_t timeout_ms) noexcept : timeout_ms_(timeout_ms) {}

  // The controller closed its end at `now`.
  OnClose controller_closed(Clock::time_point now, bool draining) noexcept;
  // A new controller was accepted: no longer orphaned.
  void attached() noexcept { orphaned_ = false; }

  bool orphaned() const noexcept { return orphaned_; }
  // While orphaned: when the worker gives up and drains.
  Clock::time_point deadline() const noexcept { return deadline_; }
  // When the controller last closed its end.
  Clock::time_point since() const noexcept { return since_; }
  bool expired(Clock::time_point now) const noexcept { return orphaned_ && now >= deadline_; }
  // Times the worker was orphaned (each is logged once, "supervisor gone").
  std::uint64_t orphanings() const noexcept { return orphanings_; }

 private:
  std::uint32_t timeout_ms_;
  bool orphaned_ = false;
  Clock::time_point since_{};
  Clock::time_point deadline_{};
  std::uint64_t orphanings_ = 0;
};

}  // namespace mtw::worker
