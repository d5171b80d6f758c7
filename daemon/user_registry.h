// Every user the supervisor runs, and every index over them, kept
// consistent in one place: by id, by name, by the cell's host-side veth
// name (the counter sweep's key), by secret key (the uniqueness rule), and
// the uid slots of the [cells] range (one per running worker).
// Thread: the event loop only. Lifetime: a UserRt lives from add() to
// remove(); references to it stay valid until then (entries are heap-held),
// so an index never dangles as long as every change goes through here:
// set_definition() for a new stored definition, bind_cell()/unbind_cell()
// for the cell, claim_uid_slot()/release_uid_slot() for the uid.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "daemon/children.h"
#include "netns/cell.h"
#include "supervisor/accounting.h"
#include "supervisor/backoff.h"
#include "supervisor/limits.h"
#include "supervisor/policy.h"
#include "supervisor/presence.h"
#include "supervisor/store.h"

namespace mtw::daemon {

using supervisor::UserId;

struct HeldConn {
  ipc::control::Handoff handoff;
  base::UniqueFd fd;
  Clock::time_point deadline;
};

enum class UserState {
  kDisabled,  // disabled or expired: no cell, gate does not know it
  kIdle,      // on-demand user without a cell (starts at the first connection)
  kStarting,  // cell up, worker spawned, not yet ready
  kRunning,
  kBackoff,  // worker crashed, restart pending
  kFailed,   // crash loop or cell error: connections go to the mask host
};
std::string_view user_state_name(UserState s) noexcept;

struct UserRt {
  explicit UserRt(supervisor::RestartPolicy::Options o) : restart(o) {}
  // Set through UserRegistry::set_definition (the key index follows it).
  supervisor::StoredUser user;
  supervisor::Limits limits;
  UserState state = UserState::kDisabled;
  std::string fail_reason;
  // Set through UserRegistry::bind_cell / unbind_cell.
  std::optional<netns::Cell> cell;
  std::optional<supervisor::WorkerCgroup> cgroup;
  std::shared_ptr<ChildProc> worker;
  // Set through UserRegistry::claim_uid_slot / release_uid_slot.
  std::optional<std::uint32_t> uid_slot;
  supervisor::RestartPolicy restart;
  std::unique_ptr<asio::steady_timer> restart_timer;
  std::uint32_t restarts = 0;

  // Connections: handed over, held, allowance.
  std::uint64_t sent = 0;          // handoffs sent to the current worker
  std::uint64_t handed_total = 0;  // handoffs sent to any worker of this user
  std::deque<HeldConn> held;
  std::uint32_t allowance = 0;  // from the fair split; 0 = no global budget
  std::uint64_t refused = 0;    // held queue full or hold expired -> mask host
  std::unordered_map<std::string, Clock::time_point> ips;  // client IP -> last connection
  Clock::time_point last_activity;

  // Presence (supervisor/presence.h). last_seen: Unix seconds of the latest
  // moment a connection of the user is known to have been open (a handoff,
  // a report with connections open, the reported end of the last one, the
  // worker's end with connections open); 0 = not since the supervisor
  // started (kept in memory only).
  supervisor::UnixSeconds last_seen = 0;
  // Connections handed to the current worker that its last report does not
  // cover yet (their ordinal above the report's handoffs / direct_handoffs
  // counter), for the open address list. Bounded: kMaxUnreported.
  struct Unreported {
    bool direct = false;        // over a lane (ordinal: direct_seen), else via us (sent)
    std::uint64_t ordinal = 0;  // the handoff's number among the worker's handoffs of its path
    supervisor::ClientAddr client;
  };
  static constexpr std::size_t kMaxUnreported = 4096;
  std::deque<Unreported> unreported;
  // A handoff to the current worker (after sent / direct_seen counted it).
  void note_unreported(bool direct, const ipc::control::PeerAddress& peer);
  // The worker's report arrived: drop what it covers.
  void drop_reported() noexcept;
  // A connection is open now (relaying, in flight or held).
  bool online() const noexcept { return active() > 0 || !held.empty(); }
  // Last seen as shown: `now` while online, else last_seen (0 = not seen).
  supervisor::UnixSeconds seen(supervisor::UnixSeconds now) const noexcept {
    return online() ? now : last_seen;
  }

  // Direct lane: the gate hands this user's clients straight to the worker
  // (daemon_lanes.cpp). lane 0 = none.
  std::uint32_t lane = 0;
  std::uint64_t lane_allow = 0;         // allow_until last sent to the gate (kUnlimited: no limit)
  std::uint64_t lane_seen = 0;          // GateDirect entries for this lane
  std::uint64_t direct_seen = 0;        // GateDirect entries for any lane of the current worker
  std::uint32_t worker_first_lane = 0;  // the current worker's first lane
  bool idle_closing = false;  // idle on-demand user: lane closed, teardown at a later sweep
  Clock::time_point idle_closing_since;
  std::uint64_t lane_reserved() const noexcept;  // credit not yet used, as far as we know

  // Accounting.
  supervisor::CellBytes billed_bytes;  // the cell's counters at the last sweep
  supervisor::PeriodBounds period;
  supervisor::Usage period_usage;
  supervisor::QuotaState quota = supervisor::QuotaState::kNormal;
  supervisor::EffectiveRate rate;  // applied to the cell
  std::uint32_t unique_ips = 0;
  bool unique_ip_event = false;  // "over the unique-IP limit" recorded for this episode
  std::uint64_t rate_bps_up = 0, rate_bps_down = 0;  // measured last sweep
  // Its share of the host bandwidth budget (BandwidthShare; 0 = no budget),
  // and the rates measured the sweep before last (its demand is the larger).
  std::uint64_t share_up_bps = 0, share_down_bps = 0;
  std::uint64_t prev_rate_bps_up = 0, prev_rate_bps_down = 0;
  std::uint64_t bytes_up_total = 0, bytes_down_total = 0;  // veth, since the supervisor started
  std::uint64_t egress_dropped = 0;  // packets its cell's egress filter dropped, since start

  // Open connections: the worker's last report + handed over since (both paths).
  std::uint32_t active() const noexcept;
};

class UserRegistry {
 public:
  using Map = std::map<UserId, std::unique_ptr<UserRt>>;

  // The uid range's worker slots (uid_first itself is the gate's).
  void reset_uid_slots(std::size_t count) { uid_slots_.assign(count, false); }

  // A new user with definition `s` (its id must be new). Returns it.
  UserRt& add(const supervisor::StoredUser& s, supervisor::RestartPolicy::Options restart);
  // Drops the user from every index and frees its uid slot; the caller has
  // torn its cell and worker down first. No-op for an unknown id.
  void remove(UserId id);
  // Replaces the user's stored definition (the name never changes; the key
  // index follows the secrets).
  void set_definition(UserRt& u, const supervisor::StoredUser& s);

  UserRt* find(UserId id) const;
  UserRt* find(std::string_view name) const;
  UserRt* find_by_host_if(std::string_view host_if) const;

  // Indexes the user's cell (u.cell must be set) / drops that index and the
  // cell itself (destroy() is the caller's, before).
  void bind_cell(UserRt& u);
  void unbind_cell(UserRt& u);
  std::size_t cells() const noexcept { return by_host_if_.size(); }

  // A free uid slot for the user (true when it has one already); false when
  // none is free.
  [[nodiscard]] bool claim_uid_slot(UserRt& u);
  void release_uid_slot(UserRt& u);

  // kBadInput for an unparsable secret or the same key twice in `secrets`;
  // kExists when a user other than `except` holds one of their keys.
  [[nodiscard]] base::Result<void> check_secrets_free(const std::vector<std::string>& secrets,
                                                      UserId except) const;

  std::size_t size() const noexcept { return users_.size(); }
  bool contains(UserId id) const { return users_.contains(id); }
  Map::iterator begin() { return users_.begin(); }
  Map::iterator end() { return users_.end(); }
  Map::const_iterator begin() const { return users_.begin(); }
  Map::const_iterator end() const { return users_.end(); }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  using Index = std::unordered_map<std::string, UserId, Hash, std::equal_to<>>;
  void index_keys(const UserRt& u);
  void unindex_keys(const UserRt& u);

  Map users_;
  // Looked up by every /v1/users/{name}/... request: a string_view finds
  // without building a std::string. Names never change.
  std::unordered_map<std::string, UserRt*, Hash, std::equal_to<>> by_name_;
  Index by_host_if_;
  Index by_key_;  // raw 16-byte secret key -> its user
  std::vector<bool> uid_slots_;
};

}  // namespace mtw::daemon
