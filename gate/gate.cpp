// Gate: start-up, listeners, signals, the housekeeping tick and shutdown.
// The control socket side is in gate_control.cpp.
#include "gate/gate.h"

#include <sys/socket.h>

#include <csignal>
#include <ctime>

#include "base/log.h"
#include "gate/gate_impl.h"

namespace mtw::gate {
namespace {

// The whole handshake buffer must fit in one handoff.
static_assert(conn::kHandshakeBytes <= control::kMaxHandoffData);

conn::Settings conn_settings(const GateOptions& g) {
  conn::Settings s;
  s.mask = g.mask;
  s.mask_connect_timeout_ms = g.mask_connect_timeout_ms;
  s.mask_discard_timeout_ms = g.mask_discard_timeout_ms;
  s.tls_skew_seconds = g.tls_skew_seconds;
  s.handshake_timeout_ms = g.handshake_timeout_ms;
  s.silent_timeout_ms = g.silent_timeout_ms;
  s.mask_mirror_after_ms = g.mask_mirror_after_ms;
  return s;
}

int sock_opt(int fd, int opt) {
  int v = -1;
  socklen_t len = sizeof v;
  if (::getsockopt(fd, SOL_SOCKET, opt, &v, &len) != 0) return -1;
  return v;
}

base::Result<void> bad_fd(int fd, const std::string& why) {
  return base::fail(base::Errc::kBadInput, "fd " + std::to_string(fd) + ": " + why);
}

}  // namespace

const std::shared_ptr<spdlog::logger>& gate_log() {
  static const auto l = base::logger("gate");
  return l;
}

Gate::Impl::Impl(GateOptions o)
    : gopts(std::move(o)), rt(conn_settings(gopts)), admission(gopts.admission) {
  rt.replay =
      proto::ReplayCache(proto::ReplayCacheOptions{gopts.replay_entries, 2 * 24 * 3600, {}});
  rt.set_users({});  // until the first table: every connection is masked
  rt.on_identified = [this](Identified id) { on_identified(std::move(id)); };
}

Gate::Gate(GateOptions opts) : impl_(std::make_unique<Impl>(std::move(opts))) {}
Gate::~Gate() = default;

base::Result<void> Gate::Impl::adopt_listener(const GateListenerSpec& spec) {
  const int fd = spec.fd;
  if (sock_opt(fd, SO_TYPE) != SOCK_STREAM) return bad_fd(fd, "not a TCP socket");
  if (sock_opt(fd, SO_ACCEPTCONN) != 1) return bad_fd(fd, "not listening");
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0 ||
      (local.ss_family != AF_INET && local.ss_family != AF_INET6)) {
    return bad_fd(fd, "not an IPv4/IPv6 socket");
  }
  tcp::acceptor acc(io);
  error_code ec;
  acc.assign(local.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
  if (ec) return bad_fd(fd, ec.message());
  tune_listener(acc);  // accepted sockets inherit TCP_NODELAY and keepalive
  acceptors.push_back(std::move(acc));
  listeners.push_back(ListenerInfo{spec.id, spec.allowed});
  return {};
}

base::Result<void> Gate::start() {
  std::signal(SIGPIPE, SIG_IGN);
  auto& d = *impl_;
  d.signals.emplace(d.io, SIGTERM, SIGINT);
  const int cfd = d.gopts.control_fd;
  if (sock_opt(cfd, SO_TYPE) != SOCK_SEQPACKET) {
    return bad_fd(cfd, "control socket is not an AF_UNIX SOCK_SEQPACKET socket");
  }
  d.listeners.reserve(d.gopts.listeners.size());  // connections point into it
  for (const auto& spec : d.gopts.listeners) {
    if (auto r = d.adopt_listener(spec); !r) return r;
  }
  d.control.emplace(d.io, cfd);
  error_code ec;
  d.control->non_blocking(true, ec);
  if (ec) return bad_fd(cfd, ec.message());
  if (d.gopts.replay_fd >= 0) {
    d.replay_store.emplace(d.gopts.replay_fd);
    auto loaded = d.replay_store->load(d.rt.replay, std::time(nullptr));
    if (!loaded) {
      gate_log()->warn("replay file not used error=\"{}\"", loaded.error().to_string());
      d.replay_store.reset();
    } else if (loaded->fresh) {
      gate_log()->info("replay file started afresh reason=\"{}\"", loaded->why_fresh);
    } else {
      gate_log()->info("replay cache restored entries={}", loaded->restored);
    }
  }
  gate_log()->info("gate started listeners={} mask=\"{}\" max_handshakes={} replay_entries={}",
                   d.acceptors.size(), proto::describe_routes(d.gopts.mask), d.gopts.max_handshakes,
                   d.gopts.replay_entries);
  return {};
}

int Gate::run() {
  auto& d = *impl_;
  for (std::size_t i = 0; i < d.acceptors.size(); ++i) {
    asio::co_spawn(d.io, d.accept_loop(d.acceptors[i], d.listeners[i]), LogExceptions{"accept"});
  }
  asio::co_spawn(d.io, d.control_loop(), LogExceptions{"control"});
  asio::co_spawn(d.io, d.signal_loop(), LogExceptions{"signals"});
  asio::co_spawn(d.io, d.tick_loop(), LogExceptions{"tick"});
  d.io.run();
  d.save_replay(true);
  gate_log()->info("gate stopped {} handoffs={} overload_closed={}",
                   counters_summary(d.rt.counters), d.rt.counters[Counter::kHandoffs],
                   d.rt.counters[Counter::kOverloadClosed]);
  return 0;
}

awaitable<void> Gate::Impl::accept_loop(tcp::acceptor& acc, const ListenerInfo& info) {
  asio::steady_timer pause(io);
  while (!stopping) {
    auto [ec, sock] = co_await acc.async_accept(use_nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acc.is_open() || stopping) co_return;
      gate_log()->warn("accept failed listener={} error={}", info.id, ec.message());
      pause.expires_after(std::chrono::milliseconds(100));  // e.g. EMFILE: back off
      co_await pause.async_wait(use_nothrow);
      continue;
    }
    auto keys = keys_of(sock);
    error_code ignored;
    if (!admit_ip(keys.source, Clock::now())) {
      ++rt.counters[Counter::kRateLimited];
      sock.close(ignored);
      continue;
    }
    auto ticket = admission.admit(keys);
    if (!ticket.held() && !keys.source.empty()) {
      ++rt.counters[Counter::kSourceLimited];  // one source cannot fill the table
      sock.close(ignored);
      continue;
    }
    if (rt.handshaking >= gopts.max_handshakes) {
      if (rt.unproven.empty()) {
        ++rt.counters[Counter::kOverloadClosed];  // logged once per tick
        sock.close(ignored);
        continue;
      }
      // Idle sockets must not hold the table: the oldest one that has not
      // sent a plausible start makes room (clients that did are kept).
      ++rt.counters[Counter::kEvictedUnproven];
      rt.unproven.front()->evict();
    }
    conn::spawn(std::make_shared<GateConn>(rt, std::move(sock), info, std::move(ticket)));
  }
}

SourceKeys Gate::Impl::keys_of(const tcp::socket& sock) const {
  error_code ec;
  auto ep = sock.remote_endpoint(ec);
  if (ec) return {};
  auto addr = ep.address();
  if (addr.is_v4()) {
    auto b = addr.to_v4().to_bytes();
    return source_keys(std::as_bytes(std::span(b)), gopts.admission);
  }
  auto b = addr.to_v6().to_bytes();
  return source_keys(std::as_bytes(std::span(b)), gopts.admission);
}

// Token bucket per source (an IPv4 address, an IPv6 /64 by default).
bool Gate::Impl::admit_ip(const std::string& key, Clock::time_point now) {
  if (gopts.per_ip_rate == 0 || key.empty()) return true;
  const double rate = gopts.per_ip_rate, burst = 2.0 * gopts.per_ip_rate;
  auto [it, fresh] = buckets.try_emplace(key, Bucket{burst, now});
  Bucket& b = it->second;
  if (!fresh) {
    b.tokens =
        std::min(burst, b.tokens + rate * std::chrono::duration<double>(now - b.last).count());
    b.last = now;
  }
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

awaitable<void> Gate::Impl::signal_loop() {
  auto [ec, sig] = co_await signals->async_wait(use_nothrow);
  if (!ec) stop(sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

awaitable<void> Gate::Impl::tick_loop() {
  asio::steady_timer timer(io);
  std::uint64_t overload_seen = 0, evicted_seen = 0, limited_seen = 0, ticks = 0;
  for (;;) {
    timer.expires_after(std::chrono::milliseconds(250));
    co_await timer.async_wait(use_nothrow);
    if (stopping) {
      // Whatever still runs (a mask connect in the resolver, say) is dropped.
      if (!rt.connections.empty()) io.stop();
      co_return;
    }
    auto now = Clock::now();
    for (conn::Connection* c : rt.connections) c->on_tick(now);
    if (++ticks % 4 == 0) save_replay(false);
    // A bucket that has refilled completely carries no state worth keeping.
    if (gopts.per_ip_rate != 0 && !buckets.empty()) {
      const double burst = 2.0 * gopts.per_ip_rate;
      std::erase_if(buckets, [&](const auto& kv) {
        return kv.second.tokens + gopts.per_ip_rate *
                                      std::chrono::duration<double>(now - kv.second.last).count() >=
               burst;
      });
    }
    if (auto n = rt.counters[Counter::kOverloadClosed]; n != overload_seen) {
      gate_log()->warn("overload: connections closed at accept count={} max_handshakes={}",
                       n - overload_seen, gopts.max_handshakes);
      overload_seen = n;
    }
    if (auto n = rt.counters[Counter::kEvictedUnproven]; n != evicted_seen) {
      gate_log()->warn("overload: unproven handshakes evicted count={} max_handshakes={}",
                       n - evicted_seen, gopts.max_handshakes);
      evicted_seen = n;
    }
    if (auto n = rt.counters[Counter::kSourceLimited]; n != limited_seen) {
      gate_log()->info("source limit: connections closed at accept count={} keys={}",
                       n - limited_seen, admission.keys());
      limited_seen = n;
    }
  }
}

void Gate::Impl::save_replay(bool sync) {
  if (!replay_store) return;
  if (auto r = replay_store->flush(rt.replay, sync); !r) {
    gate_log()->warn("replay file write failed error=\"{}\" kept=memory_only",
                     r.error().to_string());
    replay_store.reset();
  }
}

void Gate::Impl::stop(const char* why) {
  if (stopping) return;
  stopping = true;
  gate_log()->info("gate stopping why={} active={}", why, rt.counters[Counter::kActive]);
  error_code ec;
  for (auto& acc : acceptors) acc.close(ec);
  for (conn::Connection* c : rt.connections) c->close();
  if (signals) signals->cancel(ec);
  outbox.clear();
  if (direct_timer) direct_timer->cancel();
  lanes.clear();
  if (control) control->close(ec);
}

}  // namespace mtw::gate
