#include "worker/egress_dial.h"

#include <array>
#include <cstring>
#include <memory>

#include "base/log.h"
#include "proto/socks.h"

namespace mtw::worker {
namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("worker");
  return l;
}

base::Result<void> io_error(const char* what, const error_code& ec) {
  std::string s(what);
  s += ": ";
  s += ec.message();
  return tl::unexpected(base::Error{base::Errc::kSyscall, ec.value(), std::move(s)});
}

// Runs the handshake on a connected socket. Reads exactly what the
// handshake asks for, so no tunnel byte is ever swallowed.
awaitable<base::Result<void>> socks_handshake(tcp::socket& sock, const proto::UpstreamSpec& up,
                                              const proto::socks::Target& target,
                                              proto::socks::Target* bound) {
  using namespace proto::socks;
  const Version v = up.type == proto::UpstreamType::kSocks4 ? Version::kSocks4 : Version::kSocks5;
  auto hs = ClientHandshake::start(v, target, Credentials{up.username, up.password});
  if (!hs) co_return tl::unexpected(hs.error());
  if (auto [ec, n] =
          co_await asio::async_write(sock, asio::buffer(hs->first_request()), use_nothrow);
      ec) {
    co_return io_error("socks request", ec);
  }
  // The longest reply: a SOCKS5 CONNECT reply with a 255-byte name.
  std::array<std::byte, 4 + 1 + 255 + 2> buf{};
  std::size_t have = 0;
  std::size_t need = hs->first_need();
  for (;;) {
    if (need > buf.size()) co_return base::fail(base::Errc::kInternal, "socks reply too long");
    if (have < need) {
      auto [ec, n] = co_await asio::async_read(sock, asio::buffer(buf.data() + have, need - have),
                                               use_nothrow);
      have += n;
      if (ec) {
        co_return io_error(ec == asio::error::eof ? "socks reply (proxy closed)" : "socks reply",
                           ec);
      }
    }
    auto step = hs->feed({buf.data(), have});
    if (!step) co_return tl::unexpected(step.error());
    std::memmove(buf.data(), buf.data() + step->consumed, have - step->consumed);
    have -= step->consumed;
    if (!step->send.empty()) {
      if (auto [ec, n] = co_await asio::async_write(sock, asio::buffer(step->send), use_nothrow);
          ec) {
        co_return io_error("socks request", ec);
      }
    }
    if (step->done) {
      if (bound != nullptr) *bound = step->bound;
      co_return base::Result<void>{};
    }
    need = step->need;
  }
}

}  // namespace

awaitable<base::Result<void>> dial_upstream(tcp::socket& sock, const proto::UpstreamSpec& up,
                                            const std::vector<proto::Endpoint>& dc,
                                            proto::socks::Target* bound) {
  if (up.type == proto::UpstreamType::kDirect) {
    error_code last = asio::error::host_not_found;
    for (const auto& ep : dc) {
      last = co_await connect_endpoint(sock, ep);
      if (!last) co_return base::Result<void>{};
      if (!sock.is_open() && last == asio::error::operation_aborted) break;
    }
    co_return io_error("connect dc", last);
  }
  std::optional<proto::socks::Target> target;
  for (const auto& ep : dc) {
    auto t = proto::socks::make_target(ep.host, ep.port);
    if (!t) continue;
    if (up.type == proto::UpstreamType::kSocks4 && t->kind == proto::socks::Target::Kind::kIpv6)
      continue;
    target = std::move(*t);
    break;
  }
  if (!target) co_return base::fail(base::Errc::kBadInput, "no DC address this upstream can carry");
  if (auto ec = co_await connect_endpoint(sock, up.address); ec) {
    std::string what = "connect ";
    what += proto::format_endpoint(up.address);
    co_return io_error(what.c_str(), ec);
  }
  co_return co_await socks_handshake(sock, up, *target, bound);
}

awaitable<void> egress_health_loop(Runtime& rt, asio::steady_timer& timer) {
  while (!rt.draining) {
    // Read afresh each round: a live egress change replaces the spec and
    // cancels the timer to wake this loop.
    Egress* eg = rt.egress.get();
    const bool idle = !eg || eg->direct_only() || eg->spec().policy.health_interval_ms == 0;
    if (idle)
      timer.expires_at(asio::steady_timer::time_point::max());
    else
      timer.expires_after(std::chrono::milliseconds(eg->spec().policy.health_interval_ms));
    if (auto [ec] = co_await timer.async_wait(use_nothrow); rt.draining)
      co_return;
    else if (ec)
      continue;  // woken by a change: wait the new interval
    eg = rt.egress.get();
    if (!eg || eg->direct_only()) continue;
    const auto policy = eg->spec().policy;
    const auto dc = rt.dcs.lookup(policy.health_dc, rt.opts.prefer_ipv6);
    // By name: the spec may be replaced while a check waits.
    std::vector<std::string> names;
    for (const auto& up : eg->spec().upstreams) names.push_back(up.name);
    for (const auto& name : names) {
      if (rt.draining) co_return;
      auto at = eg->find(name);
      if (!at) continue;
      const auto retry = eg->retry_at(*at);
      if (retry && Clock::now() < *retry) continue;  // down, still backing off
      const proto::UpstreamSpec up = eg->spec().upstreams[*at];
      // Bounded by the DC connect timeout: a stalled proxy counts as failed.
      // Shared with the guard's handler, which may run after this iteration.
      auto sock = std::make_shared<tcp::socket>(timer.get_executor());
      auto timed_out = std::make_shared<bool>(false);
      asio::steady_timer guard(timer.get_executor());
      guard.expires_after(std::chrono::milliseconds(rt.opts.dc_connect_timeout_ms));
      guard.async_wait([sock, timed_out](const error_code& ec) {
        if (ec) return;
        *timed_out = true;
        error_code ignored;
        sock->close(ignored);
      });
      auto r = co_await dial_upstream(*sock, up, dc);
      guard.cancel();
      error_code ignored;
      sock->close(ignored);
      at = eg->find(name);
      if (!at || eg->spec().upstreams[*at] != up) continue;  // changed meanwhile: not its result
      const bool was_up = eg->is_up(*at);
      eg->on_health(*at, r.has_value(), Clock::now());
      if (!r) {
        log()->warn("upstream health check failed upstream={} error=\"{}\"", up.name,
                    *timed_out ? std::string("timeout") : r.error().context);
      }
      if (was_up != eg->is_up(*at)) {
        log()->warn("upstream {} upstream={}", eg->is_up(*at) ? "up again" : "marked down",
                    up.name);
        if (rt.upstream_changed) rt.upstream_changed();
      }
    }
  }
}

std::string egress_json(const Egress& e) {
  std::string out = "[";
  for (std::size_t i = 0; i < e.spec().upstreams.size(); ++i) {
    const auto& c = e.counters(i);
    if (i != 0) out += ',';
    out += "{\"name\":\"";
    out += e.spec().upstreams[i].name;  // [A-Za-z0-9_.-]: nothing to escape
    out += "\",\"type\":\"";
    out += proto::upstream_type_name(e.spec().upstreams[i].type);
    out += "\",\"up\":";
    out += e.is_up(i) ? "true" : "false";
    out += ",\"connects\":" + std::to_string(c.connects);
    out += ",\"failures\":" + std::to_string(c.failures);
    out += ",\"bytes_up\":" + std::to_string(c.bytes_up);
    out += ",\"bytes_down\":" + std::to_string(c.bytes_down);
    out += ",\"health_ok\":" + std::to_string(c.health_ok);
    out += ",\"health_failed\":" + std::to_string(c.health_failed);
    out += ",\"marked_down\":" + std::to_string(c.marked_down);
    out += '}';
  }
  out += ']';
  return out;
}

}  // namespace mtw::worker
