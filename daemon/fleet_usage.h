// The fleet-wide period usage of this host's users, when several hosts share
// the store (PostgreSQL, docs/fleet.md). The usage ledger adds only this
// host's committed sweeps to a user's period usage; the other hosts' bytes
// reach the store through their own sweeps. So every kReadInterval the
// accounting sweep re-reads the stored totals (every host's rows summed) of
// all users that are not disabled, in one query, right after its own commit,
// and they replace the running figures: the quota policy that follows in the
// same sweep then throttles a user whose fleet total passed its quota, on
// every host within about kReadInterval plus a sweep of the host that
// carried the bytes.
//
// A user's period usage stays "what the store holds": the read comes after
// this host's commit in the same sweep, so it includes this host's stored
// bytes, and deltas a failed commit kept back are added by the ledger when
// they are stored (as with one host), never twice. A failed read keeps the
// last figures (this host's own sweeps still add to them) and is logged once
// per failure streak.
// Thread: the event loop only.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "daemon/user_registry.h"
#include "ipc/asio.h"
#include "supervisor/store.h"

namespace mtw::daemon {

class FleetUsage {
 public:
  static constexpr std::chrono::seconds kReadInterval{2};

  // Unless the last read is younger than kReadInterval (`steady`): reads the
  // fleet totals of every user not disabled, in its current period, and
  // sets their period usage. Returns the number of users read (0 when not
  // due or on failure).
  std::size_t refresh(supervisor::Store& store, UserRegistry& users, ipc::Clock::time_point steady);
  // Why the last read failed; empty after a good one.
  const std::string& last_error() const noexcept { return last_error_; }

 private:
  ipc::Clock::time_point last_read_{};
  bool read_once_ = false;
  std::string last_error_;
  std::vector<supervisor::PeriodKey> keys_;  // reused: one per user each read
  std::vector<UserRt*> who_;                 // parallel to keys_
};

}  // namespace mtw::daemon
