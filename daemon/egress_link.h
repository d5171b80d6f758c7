// What the users' cells may reach (supervisor/cell_egress.h), kept in step
// with the running supervisor: the kernel's sets follow the configuration,
// the users' fake-TLS domains (mask destinations) and the middle-proxy lists
// in force; each worker holds the generation it was started with until its
// reap; names among the destinations are looked up again every 10 minutes;
// the per-cell drop counters become per-user counts and rate-limited
// warnings.
// Thread: the event loop only; the nft calls block for a few milliseconds,
// update() resolves names on the loop (start and reload only).
// Lifetime: made once the cells' host is open, destroyed before it (the sets
// live in the host's nft table). `host`, `cfg`, `users` and `io` are
// borrowed and outlive the link. The names' refresh runs as a coroutine that
// checks a liveness token after each wait, so it ends harmlessly once the
// link is gone.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "base/error.h"
#include "daemon/children.h"
#include "daemon/user_registry.h"
#include "netns/cell.h"
#include "supervisor/cell_egress.h"
#include "supervisor/config.h"

namespace mtw::daemon {

class EgressLink {
 public:
  // The middle-proxy endpoints of the lists in force (MiddleLink::proxies).
  using MiddleProxies = std::function<std::vector<proto::Endpoint>()>;

  EgressLink(asio::io_context& io, netns::CellHost& host, const supervisor::Config& cfg,
             UserRegistry& users, MiddleProxies middle_proxies);
  ~EgressLink();
  EgressLink(const EgressLink&) = delete;
  EgressLink& operator=(const EgressLink&) = delete;

  // Plans the sets from the current inputs (names resolved now) and applies
  // them as a new generation. At start (a failure stops it) and reload; on
  // failure the previous sets stay (logged here).
  [[nodiscard]] base::Result<void> update();
  // The users' fake-TLS domains may have changed (the gate table was sent):
  // follow_users() compares the mask destinations at its next call.
  void users_changed() noexcept { targets_dirty_ = true; }
  // Housekeeping: updates the sets only when the users' domains changed the
  // mask destinations (a new domain, say); only then, since an update may
  // resolve names on the loop.
  void follow_users();
  // A worker starts: it holds the current generation until release().
  void acquire(ChildProc& worker);
  // A worker was reaped: the generation it held may leave the sets.
  void release(ChildProc& worker);
  // Housekeeping: reads the drop counters (every 5 s at most) and adds the
  // increments to each user's egress_dropped.
  void poll_drops();
  // The supervisor is stopping: cells and their table go anyway, so
  // nothing is narrowed or looked up any more.
  void stop() noexcept { stopping_ = true; }

 private:
  supervisor::CellEgress wanted() const;
  awaitable<void> refresh_names(std::shared_ptr<const bool> alive);

  asio::io_context& io_;
  netns::CellHost& host_;
  const supervisor::Config& cfg_;
  UserRegistry& users_;
  MiddleProxies middle_proxies_;
  supervisor::EgressControl control_;
  supervisor::DropTally tally_;
  supervisor::DropLogLimiter drop_log_{std::chrono::minutes(1)};
  Clock::time_point polled_{};
  std::vector<proto::Endpoint> mask_;  // the mask destinations of the sets in force
  bool targets_dirty_ = false;
  bool names_watched_ = false;  // refresh_names() runs
  bool stopping_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace mtw::daemon
