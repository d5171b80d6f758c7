// Private to the daemon*.cpp files: the root's wiring (the Daemon class).
// State with rules of its own lives in components with their own headers:
// the users and their indexes (user_registry.h), the children's adopt and
// reap path (children.h), the gate child, its listeners and its table
// (gate_link.h), one user's policy applied to its shaper (user_policy.h),
// the counters' way into the store (usage_ledger.h), the
// cells' egress sets (egress_link.h), the middle-proxy material and ad tags
// (middle_link.h), the mask profiles (mask_link.h), admission's budget
// tally (supervisor/admission.h), the scope of a user's change
// (supervisor/user_change.h).
// Everything runs on one io_context thread; coroutines hold shared_ptrs to
// the child they serve, so a torn-down child's pending waits finish
// harmlessly.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <deque>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <spdlog/fwd.h>

#include "api/server.h"
#include "api/service.h"
#include "api/webhooks.h"
#include "base/unique_fd.h"
#include "daemon/bandwidth_share.h"
#include "daemon/children.h"
#include "daemon/daemon.h"
#include "daemon/egress_link.h"
#include "daemon/event_log.h"
#include "daemon/fleet_usage.h"
#include "daemon/fleet_view.h"
#include "daemon/gate_link.h"
#include "daemon/mask_link.h"
#include "daemon/middle_link.h"
#include "daemon/source_link.h"
#include "daemon/usage_ledger.h"
#include "daemon/user_follow.h"
#include "daemon/user_policy.h"
#include "daemon/user_registry.h"
#include "netns/cell.h"
#include "netns/counter_poller.h"
#include "netns/rate.h"
#include "supervisor/accounting.h"
#include "supervisor/admission.h"
#include "supervisor/backoff.h"
#include "supervisor/cell_egress.h"
#include "supervisor/config.h"
#include "supervisor/memory_bound.h"
#include "supervisor/mount_view.h"
#include "supervisor/policy.h"
#include "supervisor/spawn.h"
#include "supervisor/store.h"
#include "supervisor/user_change.h"
#include "systemd/dbus_manager.h"
#include "systemd/notify.h"

namespace mtw::daemon {

// The domain library's vocabulary (config, store, policy, accounting).
using namespace mtw::supervisor;
namespace asio = boost::asio;
using ipc::awaitable;
using ipc::Clock;
using ipc::error_code;
using ipc::use_nothrow;

// The daemon's logger ("supervisor"), shared by the daemon*.cpp files.
const std::shared_ptr<spdlog::logger>& log();

// Wall-clock seconds, the store's time base.
inline UnixSeconds wall_now() { return static_cast<UnixSeconds>(::time(nullptr)); }

// Raises our own RLIMIT_NOFILE soft limit to the hard one: every user holds
// a few descriptors here (control socket, pidfd watch, the cell's netlink
// socket), so a shell's soft 1024 would run out at a few hundred users.
// Logs and carries on when it cannot.
void raise_nofile_soft_limit();
// Daemon::start's checks against the host (daemon_host.cpp): kExists naming
// the clash.
[[nodiscard]] base::Result<void> check_host_clashes(const CellsConfig& c);

class Daemon final : public api::Service {
 public:
  explicit Daemon(DaemonOptions opts);
  ~Daemon() override;
  int run();

  // api::Service (daemon_service.cpp).
  base::Result<std::vector<api::UserRecord>> list_users() override;
  base::Result<api::UserRecord> get_user(std::string_view name) override;
  base::Result<api::UserRecord> create_user(const api::NewUser& u) override;
  base::Result<api::UserRecord> update_user(std::string_view name,
                                            const api::UserPatch& patch) override;
  base::Result<void> delete_user(std::string_view name) override;
  base::Result<api::UserRecord> rotate_secret(std::string_view name, std::string_view new_secret,
                                              std::uint32_t grace_s) override;
  base::Result<void> reset_usage(std::string_view name) override;
  base::Result<api::UserStatus> user_status(std::string_view name) override;
  base::Result<api::ClientIps> client_ips(std::string_view name) override;
  std::vector<api::UserStatus> all_status() override;
  base::Result<std::vector<DayUsage>> daily_usage(std::string_view name, UnixSeconds from,
                                                  UnixSeconds to) override;
  base::Result<std::vector<MonthUsage>> monthly_usage(std::string_view name, UnixSeconds from,
                                                      UnixSeconds to) override;
  api::ServerStatus server_status() override;
  base::Result<api::Links> links(std::string_view name) override;
  std::vector<api::LiveEvent> events(std::uint64_t after, std::size_t limit) override;
  base::Result<api::ReloadOutcome> reload() override;

 private:
  // daemon.cpp: start-up, listeners, cells, API, D-Bus, watchdog, shutdown.
  base::Result<void> start();
  // start()'s steps: the commented default file when asked and absent; root
  // and runnable worker/gate programs; [server] public_host_lookup; cgroup
  // v2 or the rlimit fallback for the workers' memory.
  [[nodiscard]] base::Result<void> read_config();
  [[nodiscard]] base::Result<void> start_children();
  base::Result<void> install_default_config();
  base::Result<void> check_can_run() const;
  void lookup_public_host();
  void plan_worker_memory();
  base::Result<void> prepare_dirs();
  base::Result<void> bind_listeners();
  base::Result<void> open_cells();
  // Stops services and signals the children; the rest (their reaps, the
  // final sweep, the cells' teardown, io_.stop()) follows on the loop once
  // they are gone or their time is up: nothing waits in wait(2).
  void shutdown();
  void await_children(Clock::time_point deadline, bool killed);
  std::size_t children_left() const;
  void finish_shutdown();
  void stop_services();
  void stop_children();
  std::size_t release_children_and_cells();
  base::Result<void> start_api();
  void start_dbus();
  void start_watchdog();
  void watchdog_ping();
  // READY=1 once the gate and every enabled always-on user's worker are up
  // (or given up on); then STATUS= each sweep.
  void maybe_ready();
  std::string status_summary() const;

  // daemon_users.cpp: config users -> store, store -> running users, reload,
  // printed links.
  base::Result<void> sync_config_users(const Config& cfg, bool at_start);
  base::Result<void> maybe_create_first_user();
  void load_users_from_store();
  void reconcile_user(const StoredUser& u);
  void remove_user_rt(UserId id);
  // Brings the running users in line with `stored`, the store's whole list:
  // running users missing from it removed first (a name or a secret may
  // have passed to a new user), then each new or changed one through
  // reconcile_user; `all`: the unchanged ones too (a reload: [defaults] or
  // [[upstream]] may have changed what they resolve to).
  void apply_stored_users(const std::vector<StoredUser>& stored, bool all);
  // A shared store (user_follow.h): users named in its notifications, read
  // and applied one by one; and the whole list re-read.
  void apply_user_changes(const std::vector<std::string>& names);
  void resync_users();
  base::Result<api::ReloadOutcome> reload_config();
  std::vector<std::string> keep_restart_only_settings(Config& next) const;
  bool servable(const UserRt& u, UnixSeconds now) const;
  // The user's links (and a QR code of the first), as shown at first start.
  std::string links_text(const StoredUser& u, bool with_qr) const;
  // Shows first-start secrets: on a terminal, else in a 0600 file under
  // state_dir whose path is logged (supervisor/reveal.h).
  base::Result<void> reveal_first_start(std::string_view text);
  // Stores and shows the token start_api() made (fresh_token_), once the
  // whole start has succeeded: a failed start leaves neither behind.
  base::Result<void> store_fresh_token();
  std::string public_host() const;

  // daemon_service.cpp: the model behind api::Service.
  api::UserRecord record_of(const UserRt& u) const;
  api::UserStatus status_of(const UserRt& u) const;
  // Stores a changed runtime user and applies it live.
  base::Result<api::UserRecord> commit_user(const StoredUser& changed);
  void expire_secrets(UnixSeconds now);

  // daemon_children.cpp: the workers (the gate is gate_).
  void start_user(UserRt& u);
  void spawn_worker(UserRt& u);
  [[nodiscard]] bool claim_uid_slot(UserRt& u);  // false: none free (the user is marked failed)
  void fail_worker_start(UserRt& u, const std::string& why);
  void watch_worker(UserRt& u, Process proc, base::UniqueFd ctl, uid_t uid);
  // Kills the user's worker without waiting; returns it (null: there was
  // none) so the caller can hand it what must outlive it until the reap.
  std::shared_ptr<ChildProc> stop_worker(UserRt& u);
  void teardown_user(UserRt& u, UserState next, std::string_view why);
  void on_worker_exit(UserId id, const std::shared_ptr<ChildProc>& w, int status);
  awaitable<void> worker_loop(UserId id, std::shared_ptr<ChildProc> w);
  // A report moved the worker's middle_down gauge across zero: its new
  // tagged clients now go direct (middle_fallback), or go through the middle
  // proxies again (middle_restored). An event, so webhooks and D-Bus see it.
  void note_middle_fallback(const UserRt& u, const ipc::Counters& before,
                            const ipc::Counters& after);
  void send_reload_secrets(UserRt& u);
  // Sends the worker the live settings (worker_live_flags) when they differ
  // from those it runs with: after a reload, and when it becomes ready.
  void send_settings(UserRt& u);
  // The user's egress (its upstream assignment under the running
  // configuration) to its ready worker when it differs from what the worker
  // holds, for its new connections (upstream_sync.h); not delivered: the
  // worker is restarted, which starts it with the new egress.
  void send_egress(UserRt& u);
  // A worker's report changed the state of some of its upstreams: events.
  void record_upstream_transitions(UserRt& u,
                                   const std::vector<ipc::control::UpstreamReport>& before,
                                   const std::vector<ipc::control::UpstreamReport>& after);
  std::vector<std::string> worker_argv() const;
  // What the workers' mount view hides (mount_view.h), and making it (at start).
  MountViewInput worker_mount_view() const;
  [[nodiscard]] base::Result<void> make_worker_mount_view();

  // daemon_lanes.cpp: direct lanes gate -> worker and their credit.
  // Admission's view of the global budget (supervisor/admission.h), kept
  // as running totals: touch() re-tallies one user after any change to its
  // worker, state, held queue, handoffs or lane credit.
  BudgetView budget_view() const;
  ConnLoad load_of(const UserRt& u) const;
  void touch(const UserRt& u);
  void refresh_lanes();
  void refresh_lane(UserRt& u);
  void refresh_lane(UserRt& u, const BudgetView& b, UnixSeconds now);
  bool wants_lane(const UserRt& u, UnixSeconds now) const;
  std::uint64_t lane_allow_for(const UserRt& u, const BudgetView& b) const;
  void close_lane(UserRt& u);
  void forget_lanes();  // the gate is gone: so are its lane ends
  void on_gate_direct(const ipc::control::GateDirect& d);

  // daemon_accounting.cpp: sweeps, policy, connections, status.
  void on_gate_handoff(ipc::control::GateHandoff h, base::UniqueFd fd);
  void mask_via_gate(ipc::control::Handoff h, base::UniqueFd fd);
  bool can_admit(const UserRt& u) const;
  // A client's key in UserRt::ips (supervisor::unique_ip_key: IPv6 per
  // [connections] ipv6_source_prefix).
  std::string client_key(const ipc::control::PeerAddress& p) const;
  void forward(UserRt& u, HeldConn c);
  void drain_held(UserRt& u);
  void sweep();
  // The counter dump of a sweep runs on poller_'s thread: true when one was
  // requested (finish_sweep follows on the loop) or one is still running.
  bool request_counters();
  // The rest of a sweep, on the loop: `read` feeds each live cell's counters.
  void finish_sweep(
      const std::function<base::Result<void>(const netns::CellHost::CounterFn&)>& read,
      double dump_ms, std::chrono::nanoseconds dump_cpu);
  void rebalance();
  void housekeeping();
  void write_status();
  void append_status_user(std::ostream& o, UserId id, const UserRt& u) const;
  // Records an event of `user` (none: a server event) in event_log_.
  void event(std::optional<UserId> user, std::string_view kind, std::string_view detail);
  void arm_timer(asio::steady_timer& t, std::chrono::milliseconds every, void (Daemon::*fn)());

  DaemonOptions opts_;
  asio::io_context io_;
  Config cfg_;
  std::optional<Store> store_;
  std::unique_ptr<netns::CellHost> host_;
  std::unique_ptr<EgressLink> egress_;   // with host_ (open_cells), after it: destroyed first
  std::unique_ptr<SourceLink> sources_;  // likewise: the cells' SNAT maps
  // After io_: destroyed (joined) first, so its last post finds io_ alive.
  std::unique_ptr<netns::CounterPoller> poller_;
  bool poller_failed_ = false;   // could not start: sweeps dump on the loop
  std::uint64_t sweep_gen_ = 0;  // a snapshot of an older generation is stale
  MemoryBoundPlan memory_plan_;
  base::UniqueFd worker_mountns_;  // the workers' shared mount view (mount_view.h), made at start
  std::vector<std::string> listener_names_;
  std::string looked_up_host_;  // from [server] public_host_lookup

  std::uint64_t settings_generation_ = 0;  // the last settings message sent to a worker
  std::uint64_t egress_generation_ = 0;    // the last egress message sent to a worker

  UserRegistry users_;
  BudgetTally budget_;  // every user's ConnLoad (touch())
  // The gate child, its listeners, table and restarts (gate_link.h).
  GateLink gate_;

  asio::steady_timer sweep_timer_, rebalance_timer_, tick_timer_;
  asio::signal_set signals_;
  asio::steady_timer shutdown_timer_;
  bool stopping_ = false;
  Clock::time_point started_at_;
  std::uint64_t masked_total_ = 0;
  std::uint64_t handoffs_total_ = 0;  // both paths
  std::uint64_t direct_total_ = 0;    // of which over lanes
  std::uint32_t next_lane_ = 0;
  std::chrono::nanoseconds sweep_cpu_{0};
  std::uint64_t sweeps_ = 0;
  // Names each worker cgroup uniquely ("mtw-<id>-<n>"): a torn-down user's
  // old cgroup may still await its worker's reap when the user starts again.
  std::uint64_t cgroup_seq_ = 0;
  UnixSeconds started_wall_ = 0;

  EventLog event_log_;  // sinks: webhooks_, dbus_ (set in the constructor)
  std::unique_ptr<api::ApiServer> api_;
  std::string fresh_token_;  // first start with TCP: the token, until store_fresh_token()
  std::unique_ptr<api::Webhooks> webhooks_;

  // After io_, users_ and cfg_: destroyed first, joining its fetches while io_ lives.
  MiddleLink middle_;
  MaskLink mask_;
  LiveCellOps cell_ops_;
  UserPolicy policy_;   // quota, unique IPs and rates of one user (user_policy.h)
  UsageLedger ledger_;  // counters -> store -> usage; keeps what a failed commit left
  BandwidthShare bandwidth_{cfg_, users_,
                            cell_ops_};  // [bandwidth]: each user's share, from the sweep
  std::optional<FleetView> fleet_;       // the store's hosts (GET /v1/fleet), from the sweep
  // PostgreSQL store: the users' fleet-wide period usage, from the sweep.
  std::optional<FleetUsage> fleet_usage_;
  // PostgreSQL store: other hosts' user changes, as they are notified.
  std::unique_ptr<UserFollow> follow_;

  systemd::Notifier notifier_;  // reads and clears $NOTIFY_SOCKET before any child is spawned
  std::unique_ptr<systemd::DbusManager> dbus_;
  std::unique_ptr<asio::steady_timer> watchdog_timer_;
  bool ready_sent_ = false;
};

}  // namespace mtw::daemon
