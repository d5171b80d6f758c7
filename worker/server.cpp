#include "worker/server.h"

#include <sys/prctl.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <utility>

#include "base/file.h"
#include "base/log.h"
#include "conn/syscall_filter.h"
#include "ipc/reattach_socket.h"
#include "ipc/secrets_file.h"
#include "proto/links.h"
#include "proto/random.h"
#include "worker/egress_dial.h"
#include "worker/server_impl.h"
#include "worker/session.h"

namespace mtw::worker {
namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("worker");
  return l;
}

std::string format_address(const tcp::endpoint& ep) {
  // Appended piece by piece: GCC 12 -O2 warns (-Wstringop-overflow, a false
  // positive) on the operator+ chain.
  const auto a = ep.address();
  std::string s;
  if (a.is_v6()) s += '[';
  s += a.to_string();
  if (a.is_v6()) s += ']';
  s += ':';
  s += std::to_string(ep.port());
  return s;
}

base::Result<std::string> read_small_file(const std::string& path, std::size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return base::fail_errno("open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return base::fail_errno("read " + path);
  std::string text = ss.str();
  if (text.size() > max_bytes) return base::fail(base::Errc::kTooLarge, path + ": file too large");
  return text;
}

}  // namespace

Server::Server(Options opts) : impl_(std::make_unique<Impl>(std::move(opts))) {}
Server::~Server() = default;

base::Result<void> Server::Impl::load_secrets() {
  std::vector<proto::Secret> all = rt.opts.secrets;
  if (!rt.opts.secrets_file.empty()) {
    auto file = ipc::read_secrets_file(rt.opts.secrets_file);
    if (!file) return tl::unexpected(file.error());
    all.insert(all.end(), file->begin(), file->end());
  }
  if (all.empty()) return base::fail(base::Errc::kBadInput, "no secrets");
  rt.set_secrets(std::move(all));
  return {};
}

base::Result<MiddleFiles> parse_middle_files(proto::ByteSpan secret, std::string_view config_v4,
                                             std::string_view config_v6, bool prefer_ipv6) {
  MiddleFiles m;
  m.proxy_secret.assign(secret.begin(), secret.end());
  if (auto r = proto::validate_proxy_secret(m.proxy_secret); !r) return tl::unexpected(r.error());
  if (prefer_ipv6 && !config_v6.empty()) {
    if (auto v6 = proto::parse_proxy_config(config_v6, proto::IpFamily::kV6)) {
      m.config = std::move(*v6);
      return m;
    }
  }
  // The IPv4 file when there is one (the usual route out of a cell), else
  // the IPv6 one. A single file may be either: the v4 error is reported.
  auto config = proto::parse_proxy_config(config_v4, proto::IpFamily::kV4);
  if (!config && !config_v6.empty()) {
    auto v6 = proto::parse_proxy_config(config_v6, proto::IpFamily::kV6);
    if (!v6) return tl::unexpected(config_v4.empty() ? v6.error() : config.error());
    config = std::move(v6);
  }
  if (!config) return tl::unexpected(config.error());
  m.config = std::move(*config);
  return m;
}

base::Result<void> Server::Impl::load_middle() {
  const auto& o = rt.opts;
  auto secret = read_small_file(o.proxy_secret_file, 4096);
  if (!secret) return tl::unexpected(secret.error());
  auto text = read_small_file(o.proxy_config_file, proto::kMaxProxyConfigBytes);
  if (!text) return tl::unexpected(text.error());
  std::string v6 = *text;  // one file given: it is either family's
  if (!o.proxy_config_v6_file.empty()) {
    auto t = read_small_file(o.proxy_config_v6_file, proto::kMaxProxyConfigBytes);
    if (!t) return tl::unexpected(t.error());
    v6 = std::move(*t);
  }
  auto material = parse_middle_files(proto::as_bytes(*secret), *text, v6, o.prefer_ipv6);
  if (!material) return tl::unexpected(material.error());
  start_middle(std::move(*material));
  rt.middle_routing.default_tag = *o.ad_tag;
  return {};
}

void Server::Impl::start_middle(MiddleFiles material) {
  const auto& o = rt.opts;
  if (middle) {
    log()->info("middle-proxy material replaced clusters={} default={}",
                material.config.clusters.size(),
                material.config.default_dc ? *material.config.default_dc : 0);
    middle->update(std::move(material.proxy_secret), std::move(material.config));
    return;
  }
  MiddleSettings st;
  st.proxy_secret = std::move(material.proxy_secret);
  st.config = std::move(material.config);
  st.pool_size = o.middle_pool;
  st.public_ip = o.public_ip;
  st.stall_ms = o.middle_stall_ms;
  st.connect_timeout_ms = o.dc_connect_timeout_ms;
  st.egress = &rt.egress;  // middle proxies are dialed through the user's upstreams too
  log()->info("middle-proxy mode clusters={} default={} pool={} public_ip={}",
              st.config.clusters.size(), st.config.default_dc ? *st.config.default_dc : 0,
              st.pool_size, st.public_ip.empty() ? "local" : st.public_ip);
  middle = std::make_unique<MiddlePool>(io.get_executor(), std::move(st));
  rt.middle = middle.get();
}

void Server::Impl::sync_middle_counters() {
  if (!middle) return;
  const auto& s = middle->stats();
  rt.counters[Counter::kMiddleConnections] = s.connections;
  rt.counters[Counter::kMiddleClients] = s.clients;
  rt.counters[Counter::kMiddleOpened] = s.opened;
  rt.counters[Counter::kMiddleErrors] = s.errors;
  rt.counters[Counter::kMiddleDown] = s.down;
}

base::Result<void> Server::Impl::load_egress() {
  auto text = read_small_file(rt.opts.egress_file, ipc::control::kMaxEgressBytes);
  if (!text) return tl::unexpected(text.error());
  auto spec = proto::parse_egress(*text);
  if (!spec) return tl::unexpected(spec.error());
  set_egress(std::move(*spec));
  return {};
}

void Server::Impl::set_egress(proto::EgressSpec spec) {
  std::string names;
  for (const auto& u : spec.upstreams) {
    if (!names.empty()) names += ',';
    names += u.name;
  }
  log()->info("egress upstreams={} health_interval_ms={} fallback_direct={}",
              names.empty() ? "direct" : names, spec.policy.health_interval_ms,
              spec.policy.fallback_direct);
  if (rt.egress) {
    rt.egress->replace(std::move(spec));
  } else {
    std::uint64_t seed = 0;
    proto::system_random().fill({reinterpret_cast<std::byte*>(&seed), sizeof seed});
    rt.egress = std::make_unique<Egress>(std::move(spec), seed);
  }
  if (health_timer) health_timer->cancel();  // the loop picks up the new interval
}

base::Result<void> Server::Impl::bind_all() {
  for (const auto& b : rt.opts.binds) {
    error_code ec;
    auto addr = asio::ip::make_address(b.host, ec);
    if (ec) return base::fail(base::Errc::kBadInput, "bind needs an address literal: " + b.host);
    tcp::endpoint ep(addr, b.port);
    tcp::acceptor acc(io);
    acc.open(ep.protocol(), ec);
    if (!ec) acc.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec && addr.is_v6()) acc.set_option(asio::ip::v6_only(true), ec);
    if (!ec) acc.bind(ep, ec);
    if (!ec) tune_listener(acc);  // accepted sockets inherit the options
    if (!ec) acc.listen(4096, ec);
    if (ec) {
      return tl::unexpected(base::Error{base::Errc::kSyscall, ec.value(),
                                        "bind " + proto::format_endpoint(b) + ": " + ec.message()});
    }
    std::printf("listening %s\n", format_address(acc.local_endpoint()).c_str());
    acceptors.push_back(std::move(acc));
  }
  std::fflush(stdout);
  return {};
}

void Server::Impl::print_links() const {
  std::string host = rt.opts.public_host;
  std::uint16_t port = 443;
  if (!acceptors.empty()) {
    auto ep = acceptors.front().local_endpoint();
    port = ep.port();
    if (host.empty()) host = ep.address().to_string();
  }
  if (host.empty()) return;  // managed mode without --public-host: the parent prints links
  for (const auto& s : rt.index->secrets()) {
    for (const auto& link : proto::proxy_links(s.secret, host, port))
      std::printf("%s\n", link.c_str());
  }
  std::fflush(stdout);
}

base::Result<void> Server::start() {
  std::signal(SIGPIPE, SIG_IGN);
  auto& d = *impl_;
  // Before anything is printed: a supervisor or test may signal us as soon
  // as it sees "listening"; asio queues signals until the loop runs.
  d.signals.emplace(d.io, SIGTERM, SIGINT, SIGHUP);
  if (auto r = d.load_secrets(); !r) return r;
  if (auto r = d.rt.init_dc_table(); !r) return r;
  if (d.rt.opts.ad_tag) {
    if (auto r = d.load_middle(); !r) return r;
  }
  if (!d.rt.opts.egress_file.empty()) {
    if (auto r = d.load_egress(); !r) return r;
  }
  if (d.rt.opts.replay_entries != (1u << 16)) {
    d.rt.replay =
        proto::ReplayCache(proto::ReplayCacheOptions{d.rt.opts.replay_entries, 2 * 24 * 3600, {}});
  }
  if (auto r = d.bind_all(); !r) return r;
  if (d.rt.opts.reattach_fd >= 0) {
    if (auto r = ipc::check_reattach_listener(d.rt.opts.reattach_fd); !r)
      return base::fail(r.error().code, "--reattach-fd: " + r.error().context);
  }
  if (d.rt.opts.orphan_timeout_ms != 0) {
    // The parent-death signal a supervisor sets on its children (SIGKILL)
    // survives exec: it would kill the worker the moment the supervisor
    // exits, before the orphan wait could begin.
    if (::prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0) != 0)
      return base::fail_errno("prctl(PR_SET_PDEATHSIG, 0)");
  }
  d.print_links();
  log()->info(
      "worker started listeners={} secrets={} managed={} orphan_timeout_ms={} fast_mode={} "
      "mask=\"{}\"",
      d.acceptors.size(), d.rt.index->secrets().size(), d.rt.opts.control_fd >= 0,
      d.rt.opts.orphan_timeout_ms, d.rt.opts.fast_mode, proto::describe_routes(d.rt.opts.mask));
  return {};
}

int Server::run() {
  auto& d = *impl_;
  for (auto& acc : d.acceptors) {
    asio::co_spawn(d.io, d.accept_loop(acc), LogExceptions{"accept"});
  }
  if (d.rt.opts.control_fd >= 0) {
    asio::co_spawn(d.io, d.control_loop(), LogExceptions{"control"});
    d.rt.upstream_changed = [&d] { d.send_report(); };
  }
  asio::co_spawn(d.io, d.signal_loop(), LogExceptions{"signals"});
  asio::co_spawn(d.io, d.tick_loop(), LogExceptions{"tick"});
  // Managed workers may get upstreams later (control type 15): the loop
  // sleeps without a deadline while there is nothing to check.
  if (d.rt.opts.control_fd >= 0 || (d.rt.egress && !d.rt.egress->direct_only())) {
    d.health_timer.emplace(d.io);
    asio::co_spawn(d.io, egress_health_loop(d.rt, *d.health_timer), LogExceptions{"egress health"});
  }
  d.io.run();  // returns once the drain closed everything
  d.write_stats_file();
  log()->info("worker stopped {}", counters_summary(d.rt.counters));
  if (d.rt.egress && !d.rt.egress->direct_only())
    log()->info("egress stopped {}", d.rt.egress->summary());
  return 0;
}

awaitable<void> Server::Impl::accept_loop(tcp::acceptor& acc) {
  asio::steady_timer pause(io);
  while (!rt.draining) {
    // Over the cap, stop accepting: the kernel backlog holds new clients.
    if (rt.opts.max_connections != 0 && rt.counters[Counter::kActive] >= rt.opts.max_connections) {
      pause.expires_after(std::chrono::milliseconds(50));
      co_await pause.async_wait(use_nothrow);
      continue;
    }
    auto [ec, sock] = co_await acc.async_accept(use_nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acc.is_open()) co_return;
      log()->warn("accept failed error={}", ec.message());  // e.g. EMFILE: back off
      pause.expires_after(std::chrono::milliseconds(100));
      co_await pause.async_wait(use_nothrow);
      continue;
    }
    spawn_session(rt, std::move(sock), {});
  }
}

awaitable<void> Server::Impl::signal_loop() {
  for (;;) {
    auto [ec, sig] = co_await signals->async_wait(use_nothrow);
    if (ec) co_return;
    if (sig == SIGHUP) {
      reload_secrets_file();
    } else {
      begin_drain(sig == SIGTERM ? "SIGTERM" : "SIGINT");
    }
    if (rt.draining && sig != SIGHUP) break;
  }
  signals.reset();  // a second SIGTERM/SIGINT now kills the process
}

void Server::Impl::reload_secrets_file() {
  if (rt.opts.secrets_file.empty()) {
    log()->info("reload skipped reason=no_secrets_file");
    return;
  }
  auto file = ipc::read_secrets_file(rt.opts.secrets_file);
  if (!file) {
    log()->warn("reload failed, keeping old secrets error={}", file.error().to_string());
    return;
  }
  std::vector<proto::Secret> all = rt.opts.secrets;
  all.insert(all.end(), file->begin(), file->end());
  rt.set_secrets(std::move(all));
  log()->info("secrets reloaded count={}", rt.index->secrets().size());
}

void Server::Impl::begin_drain(const char* why) {
  if (rt.draining) return;
  rt.draining = true;
  drain_deadline = Clock::now() + std::chrono::milliseconds(rt.opts.drain_timeout_ms);
  for (auto& acc : acceptors) {
    error_code ec;
    acc.close(ec);
  }
  close_lanes();       // the gate's next client takes the supervisor's path
  stop_orphan_wait();  // no controller is taken on while draining
  log()->info("draining why={} active={} timeout_ms={}", why, rt.counters[Counter::kActive],
              rt.opts.drain_timeout_ms);
  if (tick_timer) tick_timer->cancel();  // an idle tick may sleep a whole second
  if (health_timer) health_timer->cancel();
}

awaitable<void> Server::Impl::tick_loop() {
  asio::steady_timer timer(io);
  next_stats_file = Clock::now();
  next_summary = Clock::now() + std::chrono::milliseconds(rt.opts.stats_interval_ms);
  tick_timer = &timer;
  rt.on_first_connection = [this] {
    if (!tick_timer) return;
    tick_woken = true;
    tick_timer->cancel();
  };
  for (;;) {
    // Without sessions there are no deadlines to keep: an idle worker (most
    // of a supervisor's thousand) sleeps until its next periodic duty (the
    // stats file each second if one is written, else the summary line) or
    // until its first session wakes it. A thousand idle workers waking once
    // a second cost a quarter of a core on a PVM guest.
    const bool idle = rt.connections.empty() && !rt.draining && !memory.follow_up_pending();
    if (!idle) {
      timer.expires_after(std::chrono::milliseconds(250));
    } else if (!rt.opts.stats_file.empty()) {
      timer.expires_after(std::chrono::seconds(1));
    } else if (rt.opts.stats_interval_ms != 0) {
      timer.expires_at(std::max(next_summary, Clock::now() + std::chrono::seconds(1)));
    } else {
      timer.expires_at(Clock::time_point::max());
    }
    auto [ec] = co_await timer.async_wait(use_nothrow);
    const bool woken = std::exchange(tick_woken, false);
    if (ec && !rt.draining && !woken) {
      tick_timer = nullptr;
      rt.on_first_connection = nullptr;
      co_return;
    }
    auto now = Clock::now();
    for (conn::Connection* c : rt.connections) c->on_tick(now);
    if (middle) middle->on_tick(now);
    // Before an idle worker goes to sleep too: the tick that sees the last
    // connection gone returns the burst's memory.
    if (memory.on_tick(rt.connections.size(), rt.pool, io))
      log()->debug("memory returned connections={} pool_idle={}", rt.connections.size(),
                   rt.pool.idle());
    if (now >= next_stats_file) {
      write_stats_file();
      next_stats_file = now + std::chrono::seconds(1);
    }
    if (rt.opts.stats_interval_ms != 0 && now >= next_summary) {
      log()->info("stats {}", counters_summary(rt.counters));
      next_summary = now + std::chrono::milliseconds(rt.opts.stats_interval_ms);
    }
    if (rt.draining && (rt.connections.empty() || now >= drain_deadline)) {
      tick_timer = nullptr;
      rt.on_first_connection = nullptr;
      finish_drain();
      co_return;
    }
  }
}

void Server::Impl::finish_drain() {
  log()->info("drain finished remaining={}", rt.connections.size());
  for (conn::Connection* c : rt.connections) c->close();
  if (middle) middle->close_all();
  if (signals) signals->cancel();  // nothing may keep io.run() alive now
  if (control) {
    send_report();  // final counters for the parent
    error_code ec;
    control->close(ec);
  }
}

void Server::Impl::write_stats_file() {
  if (rt.opts.stats_file.empty()) return;
  rt.counters[Counter::kSeccompDenied] = conn::denied_syscalls();
  sync_middle_counters();
  std::string json = counters_json(rt.counters);
  if (rt.egress && !rt.egress->direct_only() && json.ends_with("}")) {
    json.pop_back();
    json += ",\"upstreams\":" + egress_json(*rt.egress) + "}";
  }
  if (auto r = base::write_file_atomic(rt.opts.stats_file, json + "\n", 0644,
                                       base::Durability::kNoFsync);
      !r)
    log()->warn("stats file not written error={}", r.error().to_string());
}

}  // namespace mtw::worker
