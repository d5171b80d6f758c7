// Keeping a running worker's egress in step with its user's upstream
// assignment and the configuration, and reading its upstreams' health out of
// consecutive reports. Pure: the daemon sends the egress message and records
// the events (daemon_children.cpp). Thread-safe: plain values.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "api/service.h"
#include "ipc/control_protocol.h"
#include "proto/egress.h"
#include "supervisor/config.h"
#include "supervisor/store.h"

namespace mtw::daemon {

// The assignment the store keeps for `u` (the file's values for a user
// declared there: they are synced into its row).
supervisor::UpstreamAssignment assignment_of(const supervisor::StoredUser& u);

// What a worker holds of its egress, for comparing: "" when it dials
// directly (no upstream; the policy then does not matter), else the
// --egress-file text. Holds credentials: never logged.
std::string egress_key(const proto::EgressSpec& spec);

// One upstream changing state between two reports of the same worker.
struct UpstreamTransition {
  std::string name;
  bool up = false;  // true: back up; false: marked down
  std::uint64_t failures = 0, marked_down = 0;
  friend bool operator==(const UpstreamTransition&, const UpstreamTransition&) = default;
};

// The transitions from `before` to `after`, in `after`'s order: an
// upstream whose state differs; one whose marked_down count grew while its
// state is the same went down and back up (or up and down again) between
// the reports, which gives two transitions. An upstream new in `after` (an
// egress change since `before`) is compared with a fresh one (up, never
// marked down): one marked down before the first report that names it is
// a transition too.
std::vector<UpstreamTransition> upstream_transitions(
    const std::vector<ipc::control::UpstreamReport>& before,
    const std::vector<ipc::control::UpstreamReport>& after);

// The event's kind ("upstream_up" / "upstream_down") and detail
// ("upstream=NAME failures=N marked_down=M", what docs/dbus.md names).
const char* transition_kind(const UpstreamTransition& t) noexcept;
std::string transition_detail(const UpstreamTransition& t);

// One user's part in the host's upstream view: its assignment, and its
// running worker's last report of its upstreams (null: no worker).
struct UpstreamUse {
  supervisor::UpstreamAssignment assignment;
  const std::vector<ipc::control::UpstreamReport>* reports = nullptr;
};

// Every [[upstream]] of `c`, in the file's order, with the users whose
// upstreams in force name it and what their workers report of it (summed).
std::vector<api::ServerStatus::Upstream> upstream_view(const supervisor::Config& c,
                                                       std::span<const UpstreamUse> users);

}  // namespace mtw::daemon
