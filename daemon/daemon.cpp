// Supervisor life cycle: start-up (config, store, listeners, reconciliation,
// cells, gate, workers), the API, D-Bus and watchdog, and shutdown. Users and
// SIGHUP reload are in daemon_users.cpp, the host checks at start in
// daemon_host.cpp.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>

#include "api/public_address.h"
#include "api/token.h"
#include "base/file.h"
#include "base/log.h"
#include "daemon/daemon_impl.h"
#include "daemon/upstream_sync.h"
#include "netns/reconcile.h"
#include "proto/secret.h"
#include "systemd/journal.h"
#include "systemd/listen_fds.h"

namespace mtw::daemon {
namespace control = ipc::control;

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("supervisor");
  return l;
}

namespace {

base::Result<void> make_dir(const std::string& path, mode_t mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return base::fail(base::Errc::kSyscall, "create directory " + path + ": " + ec.message());
  if (::chmod(path.c_str(), mode) != 0) return base::fail_errno("chmod " + path);
  return {};
}

}  // namespace

Daemon::Daemon(DaemonOptions opts)
    : opts_(std::move(opts)),
      gate_(io_, cfg_, users_, {opts_.gate_bin, opts_.log_level},
            {[this](const UserRt& u, UnixSeconds now) { return servable(u, now); },
             [this] {
               mask_.users_changed();                  // the fake-TLS domains may have changed
               if (egress_) egress_->users_changed();  // and with them the mask destinations
             },
             [this](control::GateHandoff h, base::UniqueFd fd) {
               on_gate_handoff(std::move(h), std::move(fd));
             },
             [this](const control::GateDirect& d) { on_gate_direct(d); },
             [this] {
               forget_lanes();  // the old gate's lane ends died with it
               refresh_lanes();
             },
             [this] { forget_lanes(); },
             [this](std::string_view kind, std::string_view detail) {
               event(std::nullopt, kind, detail);
             }}),
      sweep_timer_(io_),
      rebalance_timer_(io_),
      tick_timer_(io_),
      signals_(io_),
      shutdown_timer_(io_),
      middle_(io_, cfg_, users_,
              {[this](std::string_view kind, std::string_view detail) {
                 event(std::nullopt, kind, detail);
               },
               [this] {
                 if (egress_) (void)egress_->update();  // the cells may reach the new proxies
               }}),
      mask_(cfg_, users_),
      policy_(
          cfg_, cell_ops_,
          [this](UserId id, UnixSeconds start) { return store_->period_usage(id, start); },
          [this](UserId id, std::string_view kind, std::string_view detail) {
            event(id, kind, detail);
          }),
      ledger_(users_, [this](std::span<const UsageDelta> d, UnixSeconds now) {
        return store_->apply_sweep(d, now);
      }) {
  event_log_.set_sink([this](const api::LiveEvent& e) {
    if (webhooks_) webhooks_->post(e);
    if (dbus_) dbus_->on_event(e);
  });
}

Daemon::~Daemon() = default;

int Daemon::run() {
  started_at_ = Clock::now();
  started_wall_ = wall_now();
  if (auto r = start(); !r) {
    std::fprintf(stderr, "mtwarden: %s\n", r.error().to_string().c_str());
    log()->error("start failed error={}", r.error().to_string());
    shutdown();
    if (!io_.stopped()) io_.run();  // until the children started so far are reaped
    return 1;
  }
  signals_.add(SIGINT);
  signals_.add(SIGTERM);
  signals_.add(SIGHUP);
  std::function<void(const error_code&, int)> on_signal = [this, &on_signal](const error_code& ec,
                                                                             int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      (void)reload();
      signals_.async_wait(on_signal);
      return;
    }
    log()->info("stopping signal={}", sig == SIGINT ? "SIGINT" : "SIGTERM");
    shutdown();
  };
  signals_.async_wait(on_signal);
  io_.run();
  return 0;
}

base::Result<void> Daemon::prepare_dirs() {
  if (auto r = make_dir(cfg_.server.state_dir, 0700); !r) return r;
  if (auto r = make_dir(cfg_.server.run_dir, 0755); !r) return r;
  return {};
}

base::Result<void> Daemon::start() {
  if (auto r = read_config(); !r) return r;
  if (opts_.check_only) {
    // What the start would find on this host too (ExecReload runs --check
    // first): pools on existing addresses, uid/gid ranges of accounts.
    if (auto r = check_host_clashes(cfg_.cells); !r) return r;
    std::printf("%s: configuration OK (%zu listeners, %zu users)\n", opts_.config_path.c_str(),
                cfg_.listeners.size(), cfg_.users.size());
    io_.stop();
    return {};
  }
  if (auto r = check_can_run(); !r) return r;
  raise_nofile_soft_limit();
  if (auto r = check_host_clashes(cfg_.cells); !r) return r;
  if (auto r = prepare_dirs(); !r) return r;
  auto store = Store::open(cfg_.store, cfg_.server.state_dir + "/state.db");
  if (!store) return base::fail(store.error().code, "store: " + store.error().to_string());
  store_.emplace(std::move(*store));
  event_log_.set_store(&*store_);
  fleet_.emplace(cfg_.store.backend, store_->host_name());
  // Other hosts add to the users' usage only through a shared database.
  if (cfg_.store.backend == StoreEngine::kPostgresql) fleet_usage_.emplace();
  if (auto r = sync_config_users(cfg_, true); !r) return r;
  lookup_public_host();
  if (cfg_.cells.nat && middle_.wanted() &&
      supervisor::middle_public_ip(cfg_.middle.public_ip, cfg_.server.public_host, looked_up_host_)
          .empty())
    log()->warn(
        "middle-proxy keys will be derived from the cells' own addresses, which the middle "
        "proxies do not see behind NAT; set [middle] public_ip (or [server] public_host to an "
        "address, or public_host_lookup)");
  if (auto r = maybe_create_first_user(); !r) return r;
  if (auto r = middle_.start(); !r) return r;
  if (auto r = bind_listeners(); !r) return r;
  if (auto r = open_cells(); !r) return r;
  if (auto r = start_api(); !r) return r;
  start_dbus();
  if (auto r = start_children(); !r) return r;
  std::size_t cells = 0;
  for (auto& [id, u] : users_) cells += u->cell ? 1 : 0;
  arm_timer(sweep_timer_, std::chrono::milliseconds(cfg_.accounting.sweep_interval_ms),
            &Daemon::sweep);
  arm_timer(rebalance_timer_, std::chrono::milliseconds(cfg_.connections.rebalance_interval_ms),
            &Daemon::rebalance);
  arm_timer(tick_timer_, std::chrono::milliseconds(100), &Daemon::housekeeping);
  if (auto r = store_fresh_token(); !r) return r;
  for (const auto& n : listener_names_) std::printf("listening %s\n", n.c_str());
  std::printf("mtwarden started users=%zu cells=%zu\n", users_.size(), cells);
  std::fflush(stdout);
  log()->info("started users={} cells={} listeners={}", users_.size(), cells, gate_.listeners());
  event(std::nullopt, "started", "users=" + std::to_string(users_.size()));
  write_status();
  start_watchdog();
  return {};
}

// The file (installed first if asked and absent), then logging as it says.
base::Result<void> Daemon::read_config() {
  if (auto r = install_default_config(); !r) return r;
  auto cfg = load_config(opts_.config_path);
  if (!cfg) return base::fail(cfg.error().code, "configuration rejected:\n" + cfg.error().context);
  cfg_ = std::move(*cfg);
  event_log_.set_capacity(cfg_.api.events_kept);
  if (!base::init_logging(opts_.log_level.empty() ? cfg_.server.log_level : opts_.log_level)) {
    return base::fail(base::Errc::kBadInput, "unknown log level " + opts_.log_level);
  }
  if (cfg_.server.log_target == "journal" ||
      (cfg_.server.log_target == "auto" && systemd::stderr_is_journal())) {
    base::use_log_sink(systemd::make_journal_sink("mtwarden"));
  }
  struct stat st {};
  if (::stat(opts_.config_path.c_str(), &st) == 0 && secrets_readable_by_others(cfg_, st.st_mode)) {
    log()->warn(
        "config file with secrets readable by others path={} mode={:04o} fix=\"chmod 0640\"",
        opts_.config_path, st.st_mode & 07777);
  }
  return {};
}

// The gate, then a worker for every user that should run.
base::Result<void> Daemon::start_children() {
  plan_worker_memory();
  if (auto r = make_worker_mount_view(); !r) return r;
  users_.reset_uid_slots(cfg_.cells.uid_count - 1);
  // Without a gate nobody gets in: a gate that cannot even be spawned is a
  // start failure, not something to retry forever.
  if (auto r = gate_.start(); !r) return r;
  load_users_from_store();
  gate_.send_table();
  if (cfg_.store.backend == StoreEngine::kPostgresql) {
    follow_ = std::make_unique<UserFollow>(
        io_, cfg_.store,
        UserFollow::Hooks{[this](const std::vector<std::string>& n) { apply_user_changes(n); },
                          [this] { resync_users(); }});
    follow_->start();
  }
  return {};
}

base::Result<void> Daemon::install_default_config() {
  if (!opts_.install_default_config || std::filesystem::exists(opts_.config_path)) return {};
  auto dir = std::filesystem::path(opts_.config_path).parent_path();
  if (auto r = make_dir(dir.string(), 0755); !r) return r;
  // Whole or not at all: a start killed here must not leave half a file
  // that the next start would take as the operator's. 0640 and root's (we
  // run as root), as the package installs it: users and their secrets get
  // added to this file, and no other uid (a worker's) may read them.
  if (auto r = base::write_file_atomic(opts_.config_path, default_config_text(), 0640,
                                       base::Durability::kFsync);
      !r)
    return base::fail(r.error().code, "write default config: " + r.error().to_string());
  std::printf("Installed the default configuration at %s\n", opts_.config_path.c_str());
  return {};
}

base::Result<void> Daemon::check_can_run() const {
  if (::geteuid() != 0) {
    return base::fail(base::Errc::kPermission,
                      "mtwarden must start as root (it creates network namespaces, veths, tc and "
                      "nft rules, and drops its children to their own uids)");
  }
  for (const auto& bin : {worker_argv().front(), gate_.argv().front()}) {
    if (bin.empty() || ::access(bin.c_str(), X_OK) != 0) {
      return base::fail(base::Errc::kNotFound,
                        "cannot run \"" + bin +
                            "\" (use --worker-bin / --gate-bin, or install the "
                            "mtwarden-worker and mtwarden-gate programs next to mtwarden)");
    }
  }
  return {};
}

void Daemon::lookup_public_host() {
  if (!cfg_.server.public_host.empty() || cfg_.server.public_host_lookup.empty()) return;
  auto a = api::lookup_public_address(cfg_.server.public_host_lookup, std::chrono::seconds(3));
  if (a) {
    looked_up_host_ = *a;
    log()->info("public address looked up address={}", *a);
  } else {
    log()->warn("public address lookup failed, links use a local address error={}",
                a.error().to_string());
  }
}

void Daemon::plan_worker_memory() {
  memory_plan_ = plan_memory_bound(cfg_.cells.worker_memory_max_bytes, cfg_.cells.cgroup_dir);
  if (memory_plan_.mode == MemoryBoundMode::kCgroupV2 && cfg_.cells.cgroup_dir.empty()) {
    // Our own (delegated) cgroup: leave it for a leaf so it may give its
    // children the memory controller.
    if (auto r = enter_leaf_cgroup(memory_plan_.cgroup_parent, "supervisor"); !r) {
      memory_plan_ = MemoryBoundPlan{MemoryBoundMode::kRlimit,
                                     {},
                                     "cannot leave " + memory_plan_.cgroup_parent +
                                         " for a leaf cgroup: " + r.error().to_string()};
    }
  }
  log()->info("worker memory bound mode={} limit_bytes={} reason=\"{}\"",
              memory_bound_mode_name(memory_plan_.mode), cfg_.cells.worker_memory_max_bytes,
              memory_plan_.reason);
}

base::Result<void> Daemon::bind_listeners() {
  // Socket activation (mtwarden.socket): a configured listener takes the
  // passed socket bound to exactly its address; the others are bound here.
  auto passed = systemd::ListenFds::take();
  for (const auto& l : cfg_.listeners) {
    const std::string name = proto::format_endpoint(l.bind);
    if (!passed.empty()) {
      auto fd = passed.claim(l.bind);
      if (!fd)
        return base::fail(fd.error().code,
                          l.pos.to_string() + ": listener " + name + ": " + fd.error().context);
      if (*fd) {
        log()->info("listener from socket activation listener={}", name);
        listener_names_.push_back(name);
        gate_.add_listener(std::move(**fd), l.protocols);
        continue;
      }
    }
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(l.bind.host, ec);
    if (ec) return base::fail(base::Errc::kBadInput, "listener " + name + ": " + ec.message());
    asio::ip::tcp::endpoint ep(addr, l.bind.port);
    asio::ip::tcp::acceptor a(io_);
    a.open(ep.protocol(), ec);
    // Asio opens without SOCK_CLOEXEC; the gate gets the socket by dup2.
    if (!ec && !base::set_cloexec(a.native_handle()))
      ec.assign(errno, boost::system::system_category());
    if (!ec && addr.is_v6()) a.set_option(asio::ip::v6_only(true), ec);
    if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) a.bind(ep, ec);
    if (!ec) a.listen(4096, ec);
    if (ec == asio::error::address_family_not_supported && addr.is_v6() && addr.is_unspecified()) {
      // The default config lists [::]:443; a host without IPv6 still starts.
      log()->warn("listener skipped: this host has no IPv6 listener={}", name);
      std::printf("no IPv6 on this host: %s skipped\n", name.c_str());
      continue;
    }
    if (ec) {
      return base::fail(base::Errc::kSyscall,
                        l.pos.to_string() + ": listener " + name + ": " + ec.message());
    }
    ipc::tune_listener(a);
    if (l.bind.port == 0) {
      auto bound = a.local_endpoint(ec);
      listener_names_.push_back(
          proto::format_endpoint({bound.address().to_string(), bound.port()}));
    } else {
      listener_names_.push_back(name);
    }
    gate_.add_listener(base::UniqueFd(a.release()), l.protocols);
  }
  for (const auto& d : passed.release_unclaimed()) {
    log()->warn("passed socket matches no [[listener]], closed socket={}", d);
  }
  return {};
}

base::Result<void> Daemon::open_cells() {
  netns::CellHostConfig hc;
  hc.prefix = cfg_.cells.name_prefix;
  hc.run_dir = cfg_.cells.netns_dir;
  hc.pool.v4 = format_cidr(cfg_.cells.ipv4_pool);
  hc.pool.v4_cell_prefix = cfg_.cells.ipv4_cell_prefix;
  hc.pool.v6 = cfg_.cells.ipv6_prefix ? format_cidr(*cfg_.cells.ipv6_prefix) : std::string();
  hc.masquerade = cfg_.cells.nat;
  hc.restrict_egress = true;
  hc.ipv6_forwarding = cfg_.cells.ipv6_prefix.has_value() && cfg_.cells.ipv6_forwarding;
  // Start-up reconciliation: a crashed run's cells have no worker left (they
  // die with their parent), so nothing can be adopted; remove and rebuild.
  auto rep = netns::reconcile(hc);
  if (!rep) return base::fail(rep.error().code, "reconcile leftovers: " + rep.error().to_string());
  if (!rep->removed_links.empty() || !rep->removed_netns.empty() || rep->removed_nft_table) {
    log()->warn("removed leftovers of an earlier run links={} netns={} nft_table={}",
                rep->removed_links.size(), rep->removed_netns.size(), rep->removed_nft_table);
  }
  auto host = netns::CellHost::open(hc);
  if (!host) return base::fail(host.error().code, "cells: " + host.error().to_string());
  host_ = std::move(*host);
  egress_ =
      std::make_unique<EgressLink>(io_, *host_, cfg_, users_, [this] { return middle_.proxies(); });
  sources_ = std::make_unique<SourceLink>(
      cfg_,
      [h = host_.get()](const std::vector<netns::SourceNat>& e) { return h->set_source_nat(e); },
      [this](const std::string& name) {
        const UserRt* u = users_.find(name);
        const auto a = u ? assignment_of(u->user) : file_assignment(cfg_, name);
        return std::vector<std::string>(assigned_names(cfg_, a));
      });
  return egress_->update();  // before any worker starts
}

base::Result<void> Daemon::start_api() {
  const std::string socket =
      cfg_.api.socket.empty() ? cfg_.server.run_dir + "/api.sock" : cfg_.api.socket;
  const std::string token_path = cfg_.server.state_dir + "/api_token.sha256";
  std::string fresh_hash;
  if (cfg_.api.tcp) {
    auto have = api::load_token_hash(token_path);
    if (!have && have.error().code == base::Errc::kNotFound) {
      // First start with TCP: the only time the token is ever shown. It is
      // stored and shown by store_fresh_token() once the start succeeded.
      fresh_token_ = api::generate_token();
      fresh_hash = api::token_hash(fresh_token_);
    }
  }
  auto srv = api::ApiServer::start(io_, cfg_.api, socket, token_path, *this, {}, fresh_hash);
  if (!srv) return base::fail(srv.error().code, "api: " + srv.error().to_string());
  api_ = std::move(*srv);
  if (!cfg_.api.webhooks.empty()) {
    api::WebhookOptions wo;
    wo.urls = cfg_.api.webhooks;
    wo.timeout_ms = cfg_.api.webhook_timeout_ms;
    wo.retries = cfg_.api.webhook_retries;
    wo.ca_file = cfg_.api.webhook_ca_file;
    webhooks_ = api::Webhooks::create(io_, wo);
  }
  log()->info("api listening socket={} tcp={}", socket,
              cfg_.api.tcp ? proto::format_endpoint(*cfg_.api.tcp) : "-");
  return {};
}

void Daemon::start_dbus() {
  if (!cfg_.dbus.enabled) return;
  systemd::DbusOptions o;
  o.bus = cfg_.dbus.bus;
  auto m = systemd::DbusManager::start(io_, *this, o);
  if (!m) {
    log()->warn("dbus not started bus={} error={}", o.bus, m.error().to_string());
    return;
  }
  // Unconnected (no bus yet, a host without one): the manager retries in the
  // background and logged why; the proxy runs either way.
  dbus_ = std::move(*m);
  if (dbus_->connected()) log()->info("dbus serving name={} bus={}", systemd::kBusName, o.bus);
}

void Daemon::start_watchdog() {
  const auto period = notifier_.watchdog_period();
  if (!period) return;
  watchdog_timer_ = std::make_unique<asio::steady_timer>(io_);
  const auto every = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(*period),
                              std::chrono::milliseconds(1));
  log()->info("watchdog enabled period_ms={}", every.count());
  // Pinged from this event loop: a loop that stalls stops the pings and
  // systemd restarts us (WatchdogSec in mtwarden.service).
  notifier_.watchdog();
  arm_timer(*watchdog_timer_, every, &Daemon::watchdog_ping);
}

void Daemon::watchdog_ping() { notifier_.watchdog(); }

std::string Daemon::status_summary() const {
  std::uint32_t conns = 0, throttled = 0, failed = 0;
  for (const auto& [id, u] : users_) {
    conns += u->active();
    throttled += u->rate.reasons.any() ? 1 : 0;
    failed += u->state == UserState::kFailed ? 1 : 0;
  }
  return systemd::status_line(static_cast<std::uint32_t>(users_.size()), conns, throttled, failed);
}

void Daemon::maybe_ready() {
  if (ready_sent_ || stopping_ || !gate_.ready()) return;
  for (const auto& [id, u] : users_) {
    // Every cell is created before its worker is spawned; kStarting is the
    // only state in which a worker is still on its way.
    if (u->state == UserState::kStarting) return;
  }
  ready_sent_ = true;
  const std::string line = status_summary();
  notifier_.ready(line);
  log()->info("ready status=\"{}\"", line);
}

void Daemon::shutdown() {
  if (stopping_) return;
  stopping_ = true;
  middle_.stop();
  if (egress_) egress_->stop();
  notifier_.stopping("stopping: draining " + status_summary());
  // The drain may take shutdown_grace_ms; tell systemd before TimeoutStopSec
  // runs out on a slow drain.
  notifier_.extend_timeout(std::chrono::milliseconds(cfg_.timeouts.shutdown_grace_ms + 10'000));
  stop_services();
  stop_children();
  await_children(Clock::now() + std::chrono::milliseconds(cfg_.timeouts.shutdown_grace_ms), false);
}

std::size_t Daemon::children_left() const {
  std::size_t n = gate_.running() ? 1 : 0;
  for (const auto& [id, u] : users_) n += u->worker && !u->worker->gone && u->worker->proc.valid();
  return n;
}

// The exit watches reap the children (children.h); this only looks every
// 10 ms whether they are all gone, and SIGKILLs the rest when the grace
// time is up (then gives them a second to be reaped).
void Daemon::await_children(Clock::time_point deadline, bool killed) {
  const std::size_t left = children_left();
  if (left != 0 && Clock::now() < deadline) {
    shutdown_timer_.expires_after(std::chrono::milliseconds(10));
    shutdown_timer_.async_wait(
        [this, deadline, killed](const error_code&) { await_children(deadline, killed); });
    return;
  }
  if (left != 0 && !killed) {
    log()->warn("children still running after the grace time, killing them count={}", left);
    gate_.kill();
    for (auto& [id, u] : users_)
      if (u->worker && !u->worker->gone) (void)u->worker->proc.kill(SIGKILL);
    await_children(Clock::now() + std::chrono::milliseconds(1000), true);
    return;
  }
  finish_shutdown();
}

void Daemon::finish_shutdown() {
  if (host_ && store_) sweep();
  const std::size_t cells = release_children_and_cells();
  if (host_) (void)host_->reap();
  egress_.reset();   // its sets are in the host's table
  sources_.reset();  // and so are its maps
  host_.reset();     // removes the nft table
  if (store_) event(std::nullopt, "stopped", "cells=" + std::to_string(cells));
  log()->info("stopped cells_removed={}", cells);
  std::error_code fec;
  std::filesystem::remove(cfg_.server.run_dir + "/status.json", fec);
  io_.stop();
}

// Timers, signals, the API, D-Bus and webhooks: nothing new starts.
void Daemon::stop_services() {
  if (watchdog_timer_) watchdog_timer_->cancel();
  if (follow_) follow_->stop();
  if (dbus_) dbus_->stop();
  sweep_timer_.cancel();
  rebalance_timer_.cancel();
  tick_timer_.cancel();
  signals_.cancel();
  gate_.stop();  // no restart
  if (api_) api_->stop();
  if (webhooks_) webhooks_->stop();
}

// SIGTERM to the gate and every worker. They get the grace time to finish
// (await_children: SIGKILL after it), so that the final sweep bills what
// the workers moved before their cells go.
void Daemon::stop_children() {
  gate_.terminate();
  for (auto& [id, u] : users_) {
    if (u->restart_timer) u->restart_timer->cancel();
    if (u->worker) {
      u->worker->stopping = true;
      (void)u->worker->proc.kill(SIGTERM);
    }
  }
}

// Closes the children's sockets and destroys every cell; returns how many.
std::size_t Daemon::release_children_and_cells() {
  std::size_t cells = 0;
  for (auto& [id, u] : users_) {
    u->held.clear();
    touch(*u);
    if (u->worker) release_child(*u->worker);
    if (u->cell) {
      if (auto r = u->cell->destroy(); !r)
        log()->warn("cell teardown failed user={} error={}", u->user.name, r.error().to_string());
      ++cells;
      users_.unbind_cell(*u);
    }
    u->cgroup.reset();
  }
  gate_.release();
  return cells;
}

int run_daemon(const DaemonOptions& options) {
  Daemon d(options);
  return d.run();
}

}  // namespace mtw::daemon
