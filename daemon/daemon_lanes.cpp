// Direct lanes: the gate hands an identified client straight to its user's
// worker over a socket pair the supervisor made (one end to the worker, one
// to the gate), so a connection wakes the gate and the worker, not the
// supervisor too. The supervisor stays in charge of admission through
// credit: the gate may use a lane only while the number it sent over it is
// below the supervisor's allow_until; past that, or with no lane, the client
// takes the supervisor's path (hold queue, on-demand start, mask). The gate
// tells what it sent in batches (GateDirect) before any later GateHandoff,
// so when the supervisor decides on a client it has counted every earlier
// one. docs/supervisor.md "Direct lanes".
#include <sys/socket.h>

#include <ctime>

#include "base/check.h"
#include "base/log.h"
#include "daemon/daemon_impl.h"

namespace mtw::daemon {
namespace control = ipc::control;

BudgetView Daemon::budget_view() const {
  const BudgetView b = budget_.view(cfg_.connections.global_budget);
#ifndef NDEBUG
  // The totals must equal a fresh count: a missed touch() would skew admission.
  BudgetTally fresh;
  for (const auto& [id, u] : users_) fresh.set(id, load_of(*u));
  MTW_CHECK(fresh.view(cfg_.connections.global_budget) == b);
#endif
  return b;
}

ConnLoad Daemon::load_of(const UserRt& u) const {
  const std::uint32_t a = u.active();
  return ConnLoad{a + u.lane_reserved(), a != 0 || !u.held.empty(),
                  u.worker && u.state == UserState::kRunning};
}

void Daemon::touch(const UserRt& u) { budget_.set(u.user.id, load_of(u)); }

bool Daemon::wants_lane(const UserRt& u, UnixSeconds now) const {
  return cfg_.connections.direct_lanes && !stopping_ && gate_.alive() && u.worker &&
         u.worker->ready && !u.worker->gone && u.state == UserState::kRunning && !u.idle_closing &&
         servable(u, now);
}

std::uint64_t Daemon::lane_allow_for(const UserRt& u, const BudgetView& b) const {
  LaneCreditInput in;
  in.active = u.active();
  in.max_connections = u.limits.max_connections;
  in.global_budget = cfg_.connections.global_budget;
  in.budget_used = b.used - std::min(b.used, u.lane_reserved());
  in.fair = std::max<std::uint64_t>(u.allowance, b.equal);
  in.lanes = b.lanes;
  in.held = !u.held.empty();
  auto credit = lane_credit(in);
  return credit ? u.lane_seen + *credit : control::kUnlimited;
}

void Daemon::refresh_lanes() {
  const BudgetView b = budget_view();
  const UnixSeconds now = wall_now();
  for (auto& [id, u] : users_) refresh_lane(*u, b, now);
}

void Daemon::refresh_lane(UserRt& u) { refresh_lane(u, budget_view(), wall_now()); }

void Daemon::refresh_lane(UserRt& u, const BudgetView& b, UnixSeconds now) {
  if (!wants_lane(u, now)) {
    if (u.lane != 0) close_lane(u);
    return;
  }
  if (u.lane != 0) {
    const std::uint64_t allow = lane_allow_for(u, b);
    if (allow == u.lane_allow) return;
    if (auto r = gate_.send(
            control::GateCredit{static_cast<std::uint32_t>(u.user.id), u.lane, false, allow});
        !r) {
      log()->debug("lane credit not sent user={} error={}", u.user.name, r.error().to_string());
      return;  // the next pass tries again; until then the old credit holds
    }
    u.lane_allow = allow;
    touch(u);
    return;
  }
  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) {
    log()->warn("lane not opened user={} error=socketpair errno={}", u.user.name, errno);
    return;
  }
  base::UniqueFd worker_end(sp[0]), gate_end(sp[1]);
  std::uint32_t id = ++next_lane_;
  if (id == 0) id = ++next_lane_;
  u.lane_seen = 0;
  const std::uint64_t allow = lane_allow_for(u, b);
  if (auto r = send_to(*u.worker, control::Lane{id}, worker_end.get()); !r) {
    log()->warn("lane not opened user={} error=\"to worker: {}\"", u.user.name,
                r.error().to_string());
    return;
  }
  // When this fails (the gate's socket is full at a gate start with many
  // users, say), the worker's end sees EOF and the next pass tries again.
  if (auto r = gate_.send(control::GateLane{static_cast<std::uint32_t>(u.user.id), id, allow},
                          gate_end.get());
      !r) {
    log()->debug("lane not opened user={} error=\"to gate: {}\"", u.user.name,
                 r.error().to_string());
    return;
  }
  u.lane = id;
  u.lane_allow = allow;
  touch(u);
  if (u.worker_first_lane == 0) u.worker_first_lane = id;
  log()->debug("lane opened user={} lane={} allow_until={}", u.user.name, id, allow);
}

void Daemon::close_lane(UserRt& u) {
  if (u.lane == 0) return;
  if (gate_.alive()) {
    // Lost when the gate's socket is full: the gate then finds the lane dead
    // at its next send (the worker's end is closed by then) and drops it.
    (void)gate_.send(control::GateCredit{static_cast<std::uint32_t>(u.user.id), u.lane, true, 0});
  }
  u.lane = 0;
  u.lane_allow = 0;
  u.lane_seen = 0;
  touch(u);
}

void Daemon::forget_lanes() {
  for (auto& [id, u] : users_) {
    u->lane = 0;
    u->lane_allow = 0;
    u->lane_seen = 0;
    touch(*u);
  }
}

void Daemon::on_gate_direct(const control::GateDirect& d) {
  const auto now = Clock::now();
  bool recredit = false;
  for (const auto& e : d.entries) {
    ++handoffs_total_;
    ++direct_total_;
    UserRt* found = users_.find(static_cast<UserId>(e.user));
    if (!found) continue;  // removed meanwhile: its worker is gone too
    UserRt& u = *found;
    u.ips[client_key(e.peer)] = now;
    u.last_activity = now;
    ++u.handed_total;
    // Lanes are numbered in order: one at least as new as the worker's first
    // went to the current worker, older ones to a worker already gone.
    u.last_seen = wall_now();
    if (u.worker_first_lane != 0 && e.lane >= u.worker_first_lane) {
      ++u.direct_seen;
      u.note_unreported(true, e.peer);
    }
    if (e.lane == u.lane && u.lane != 0) {
      ++u.lane_seen;
      recredit = recredit || u.lane_allow != control::kUnlimited;
    }
    touch(u);
  }
  // Credit spent: give more if the caps allow (one pass per batch).
  if (recredit) refresh_lanes();
}

}  // namespace mtw::daemon
