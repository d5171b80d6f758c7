// The thin Beast layer of the API: listeners, sessions with deadlines and
// limits, conversion to/from the pure Handler (handler.h).
#include "api/server.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <tuple>
#include <vector>

#include "api/beast.h"
#include "api/flood_window.h"
#include "api/handler.h"
#include "api/http_head.h"
#include "api/token.h"
#include "base/log.h"
#include "base/unique_fd.h"
#include "proto/dc_table.h"

namespace mtw::api {
namespace {

using namespace detail;
using base::Errc;
using base::fail;
using Clock = std::chrono::steady_clock;

constexpr std::uint32_t kHeaderLimit = 16 * 1024;
constexpr auto kErrorWriteTimeout = std::chrono::seconds(2);  // 408/413 on the way out
constexpr auto kLingerTimeout = std::chrono::milliseconds(500);
constexpr std::size_t kLingerMaxBytes = 1 << 20;
// Refusals and failed authentications: one line for the first of a flood,
// then one summary per window (flood_window.h).
constexpr auto kFloodWindow = std::chrono::seconds(10);

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("api");
  return l;
}

// A session's hook for stop(): idle sessions are closed at once, busy ones
// close after their current response.
struct SessionCtl {
  bool idle = true;
  std::function<void()> cancel;
};

// Who is at the other end of a connection: the address on TCP, the uid on
// the Unix socket (SO_PEERCRED).
struct Peer {
  std::string name;           // "127.0.0.1", "uid:1000": for the log
  asio::ip::address address;  // TCP only: the per-peer cap's key (IPv6: its /64)
  bool root = false;          // Unix only: uid 0 may use the root reserve
};

Peer peer_of(tcp::socket& s) {
  error_code ec;
  const auto ep = s.remote_endpoint(ec);
  if (ec) return {"unknown", {}, false};
  asio::ip::address key = ep.address();
  if (key.is_v6() && !key.to_v6().is_v4_mapped()) {
    // One host usually holds a whole /64: counted as one peer.
    auto bytes = key.to_v6().to_bytes();
    std::fill(bytes.begin() + 8, bytes.end(), 0);
    key = asio::ip::address_v6(bytes);
  }
  return {ep.address().to_string(), key, false};
}

Peer peer_of(local_stream::socket& s) {
  ::ucred cr{};
  ::socklen_t len = sizeof cr;
  if (::getsockopt(s.native_handle(), SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
    return {"uid:unknown", {}, false};
  return {"uid:" + std::to_string(cr.uid), {}, cr.uid == 0};
}

// A FloodWindow with the timer that ends its windows and the summary line.
// Held by shared_ptr: a timer completion already queued keeps it alive.
class FloodLog : public std::enable_shared_from_this<FloodLog> {
 public:
  FloodLog(asio::any_io_executor ex, std::string phrase)
      : timer_(std::move(ex)), phrase_(std::move(phrase)) {}
  // Counts one event; true when the caller logs it on its own.
  bool record(std::string_view peer) {
    if (!window_.record(peer, Clock::now())) return false;
    schedule();
    return true;
  }
  // Reports what is still counted (server stop).
  void stop() {
    timer_.cancel();
    report(window_.drain());
  }

 private:
  void schedule() {
    timer_.expires_at(*window_.window_end());
    timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec) return;
      self->report(self->window_.flush(Clock::now()));
      if (self->window_.window_end()) self->schedule();
    });
  }
  void report(std::optional<FloodWindow::Summary> s) {
    if (!s) return;
    log()->warn("{} count={} peers={}{} window_s={}", phrase_, s->count, s->peers,
                s->peers_capped ? "+" : "",
                std::chrono::duration_cast<std::chrono::seconds>(kFloodWindow).count());
  }

  FloodWindow window_{kFloodWindow};
  asio::steady_timer timer_;
  std::string phrase_;
};

struct Shared {
  Shared(Service& s, const supervisor::ApiConfig& c, TokenState t, const ConnectionLimits& l,
         asio::io_context& io)
      : cfg(c),
        limits(l),
        token(std::move(t)),
        handler(s, c.secret_grace_s, token),
        refusals(std::make_shared<FloodLog>(io.get_executor(), "api connections refused")),
        auth_failures(
            std::make_shared<FloodLog>(io.get_executor(), "api authentication failures")) {}

  // Takes a connection slot for `p`; on refusal returns the reason
  // ("listener_full", "peer_full") and counts it.
  const char* admit(Transport tr, const Peer& p) {
    ApiCounters& n = handler.counters();
    if (tr == Transport::kUnix) {
      const std::size_t cap = limits.unix_max + (p.root ? limits.unix_root_reserve : 0);
      if (active_unix >= cap) {
        ++n.refused_unix;
        return "listener_full";
      }
      ++active_unix;
      return nullptr;
    }
    if (active_tcp >= limits.tcp_max) {
      ++n.refused_tcp_listener;
      return "listener_full";
    }
    auto it = tcp_by_peer.try_emplace(p.address, 0).first;
    if (it->second >= limits.tcp_per_peer) {
      ++n.refused_tcp_peer;
      return "peer_full";
    }
    ++it->second;
    ++active_tcp;
    return nullptr;
  }
  void release(Transport tr, const Peer& p) {
    if (tr == Transport::kUnix) {
      --active_unix;
      return;
    }
    --active_tcp;
    auto it = tcp_by_peer.find(p.address);
    if (it != tcp_by_peer.end() && --it->second == 0) tcp_by_peer.erase(it);
  }

  supervisor::ApiConfig cfg;
  ConnectionLimits limits;
  TokenState token;
  Handler handler;
  std::optional<local_stream::acceptor> unix_acceptor;
  std::optional<tcp::acceptor> tcp_acceptor;
  std::string socket_path;
  std::size_t active_unix = 0;
  std::size_t active_tcp = 0;
  std::map<asio::ip::address, std::size_t> tcp_by_peer;  // only peers with a connection
  std::shared_ptr<FloodLog> refusals;
  std::shared_ptr<FloodLog> auth_failures;
  bool stopped = false;
  std::set<SessionCtl*> sessions;
};

// One connection. The deadline cancels the socket's pending operations
// (not close: a 408 may still be written). The timer is lazy: arm() and
// disarm() only move `deadline`; a pending wait that fires before the
// current deadline waits again. So a keep-alive request costs no timer
// cancel (which posts a completion, an extra turn of the event loop) and no
// timerfd re-arm; with the same timeout every time the timer fires once per
// timeout period, not once per request. `wait_gen` discards completions of
// superseded waits.
template <class Socket>
struct Conn : std::enable_shared_from_this<Conn<Socket>> {
  explicit Conn(Socket s) : sock(std::move(s)), timer(sock.get_executor()) {}
  Socket sock;
  asio::steady_timer timer;
  Clock::time_point deadline = Clock::time_point::max();  // max: disarmed
  std::uint64_t wait_gen = 0;
  bool waiting = false;  // a wait is pending, due at timer.expiry()
  bool closed = false;
  bool timed_out = false;
  bool linger = false;  // closing with unread input: drain it first (see linger_close)

  void arm(Clock::duration d) {
    deadline = Clock::now() + d;
    timed_out = false;
    // A wait due no later than the new deadline re-waits when it fires.
    if (!waiting || timer.expiry() > deadline) wait();
  }
  void disarm() { deadline = Clock::time_point::max(); }
  void close() {
    disarm();
    closed = true;
    ++wait_gen;
    timer.cancel();  // releases the wait's reference to this connection
    error_code ignored;
    sock.shutdown(Socket::shutdown_both, ignored);
    sock.close(ignored);
  }

 private:
  void wait() {
    const std::uint64_t g = ++wait_gen;
    waiting = true;
    timer.expires_at(deadline);
    timer.async_wait([self = this->shared_from_this(), g](error_code ec) {
      if (g != self->wait_gen) return;  // superseded by a later wait, or closed
      self->waiting = false;
      if (ec || self->closed || self->deadline == Clock::time_point::max()) return;
      if (Clock::now() < self->deadline) {
        self->wait();  // re-armed since this wait began
        return;
      }
      self->deadline = Clock::time_point::max();
      self->timed_out = true;
      error_code ignored;
      self->sock.cancel(ignored);
    });
  }
};

// Closing a socket with unread input makes the kernel send RST, which can
// destroy the error response still in flight to the client. So after an
// early answer (401, 408, 413, malformed) we half-close and read what the
// client is still sending, briefly and boundedly, before closing.
template <class Socket>
awaitable<void> linger_close(Conn<Socket>& c) {
  error_code ignored;
  c.sock.shutdown(Socket::shutdown_send, ignored);
  c.arm(kLingerTimeout);
  std::array<char, 4096> buf;
  std::size_t total = 0;
  while (total < kLingerMaxBytes) {
    auto [ec, n] = co_await c.sock.async_read_some(asio::buffer(buf), use_nothrow);
    if (ec) break;
    total += n;
  }
  c.disarm();
}

// Most answers fit in the socket's send buffer: they are written at once
// with a non-blocking send (the socket is in non-blocking mode, see
// session()), without a deadline and without the posted completion (one
// more turn of the event loop) an async write costs. What does not fit (a
// big /metrics, a slow reader) goes on asynchronously under `timeout`.
// The head comes from response_head() (http_head.h), not Beast's
// serializer: same bytes, a fraction of the CPU.
template <class Socket>
awaitable<bool> write(Conn<Socket>& c, HttpResponse r, unsigned version, bool keep_alive,
                      Clock::duration timeout) {
  const std::string head = response_head(r, version, keep_alive);
  const std::array<asio::const_buffer, 2> all{asio::buffer(head), asio::buffer(r.body)};
  error_code ec;
  const std::size_t sent = asio::write(c.sock, all, ec);
  if (!ec) co_return true;
  if (ec != asio::error::would_block && ec != asio::error::try_again) co_return false;
  const std::size_t in_head = std::min(sent, head.size());
  const std::array<asio::const_buffer, 2> rest{asio::buffer(head) + in_head,
                                               asio::buffer(r.body) + (sent - in_head)};
  c.arm(timeout);
  std::tie(ec, std::ignore) = co_await asio::async_write(c.sock, rest, use_nothrow);
  c.disarm();
  co_return !ec;
}

HttpResponse error(int status, std::string message) {
  return error_response(ApiError{status, std::move(message), ""});
}

// Reads one request; answers it. Returns false when the connection must close.
template <class Socket>
awaitable<bool> serve_one(Shared& sh, Conn<Socket>& c, beast::flat_buffer& buf, Transport tr,
                          const Peer& peer, SessionCtl& ctl) {
  http::request_parser<http::string_body> parser;
  // No limit while the header is read: Beast would answer a large
  // Content-Length with body_limit as soon as the header is complete, and
  // an unauthenticated client must get 401, not 413. The limit is checked
  // (and set, for chunked bodies) once the request is authorized.
  parser.body_limit(boost::none);
  parser.header_limit(kHeaderLimit);
  const auto timeout = std::chrono::milliseconds(sh.cfg.request_timeout_ms);
  c.arm(timeout);  // the whole request, from its first byte (or idle keep-alive) on
  ctl.idle = true;
  auto [ec, n] = co_await http::async_read_header(c.sock, buf, parser, use_nothrow);
  ctl.idle = false;
  const bool log_request = log()->should_log(spdlog::level::debug);
  const auto started = log_request ? Clock::now() : Clock::time_point{};
  auto fail_read = [&](error_code e) -> std::optional<HttpResponse> {
    if (e == http::error::body_limit)
      return error(413, "the body is larger than " + std::to_string(sh.cfg.body_limit) + " bytes");
    if (c.timed_out)
      return parser.got_some() || buf.size() > 0
                 ? std::optional(error(408, "the request was not complete in time"))
                 : std::nullopt;
    if (e.category() == http::make_error_code(http::error::end_of_stream).category() &&
        e != http::error::end_of_stream && e != http::error::partial_message)
      return error(400, "malformed HTTP request: " + e.message());
    return std::nullopt;
  };
  if (ec) {
    c.disarm();
    if (auto r = fail_read(ec)) {
      c.linger = co_await write(c, std::move(*r), 11, false, kErrorWriteTimeout);
    }
    co_return false;
  }
  auto& hdr = parser.get();
  if (auto denied = sh.handler.authorize(tr, hdr[http::field::authorization])) {
    c.disarm();
    ++sh.handler.counters().auth_failures_tcp;  // only TCP needs a token
    if (sh.auth_failures->record(peer.name))
      log()->warn("api authentication failed transport={} peer={} reason={}",
                  tr == Transport::kUnix ? "unix" : "tcp", peer.name,
                  hdr[http::field::authorization].empty() ? "no_token" : "wrong_token");
    c.linger = co_await write(c, std::move(*denied), hdr.version(), false, kErrorWriteTimeout);
    co_return false;
  }
  if (const auto len = parser.content_length(); len && *len > sh.cfg.body_limit) {
    c.disarm();
    c.linger = co_await write(c, *fail_read(http::error::body_limit), hdr.version(), false,
                              kErrorWriteTimeout);
    co_return false;
  }
  parser.body_limit(sh.cfg.body_limit);
  if (beast::iequals(hdr[http::field::expect], "100-continue")) {
    http::response<http::empty_body> cont{http::status::continue_, hdr.version()};
    auto [wec, wn] = co_await http::async_write(c.sock, cont, use_nothrow);
    if (wec) co_return false;
  }
  // A request without a body (GET) is complete with its header: reading on
  // would only post a completion that has nothing to do.
  if (!parser.is_done())
    std::tie(ec, n) = co_await http::async_read(c.sock, buf, parser, use_nothrow);
  c.disarm();
  if (ec) {
    if (auto r = fail_read(ec))
      c.linger = co_await write(c, std::move(*r), hdr.version(), false, kErrorWriteTimeout);
    co_return false;
  }
  auto& req = parser.get();
  HttpRequest hr{std::string(req.method_string()),
                 std::string(req.target()),
                 std::string(req[http::field::content_type]),
                 std::string(req[http::field::authorization]),
                 std::move(req.body()),
                 tr};
  HttpResponse res = sh.handler.handle(hr);
  const bool keep = req.keep_alive() && !sh.stopped;
  if (log_request)
    log()->debug(
        "api request transport={} method={} path={} status={} duration_us={}",
        tr == Transport::kUnix ? "unix" : "tcp", hr.method, target_path(hr.target), res.status,
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count());
  const bool ok = co_await write(c, std::move(res), req.version(), keep, timeout);
  co_return ok&& keep;
}

// Holds a connection slot (Shared::admit) for the session's lifetime.
struct Slot {
  Slot(Shared& s, Transport t, const Peer& p) : sh(s), tr(t), peer(p) {}
  ~Slot() { sh.release(tr, peer); }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  Shared& sh;
  Transport tr;
  const Peer& peer;
};

// `peer` has a slot taken by admit(); the session gives it back.
template <class Socket>
awaitable<void> session(std::shared_ptr<Shared> sh, Socket sock, Transport tr, Peer peer) {
  const Slot slot(*sh, tr, peer);
  auto c = std::make_shared<Conn<Socket>>(std::move(sock));
  {
    // Only synchronous calls see this (write() tries them first); Asio's
    // async operations on the socket are non-blocking anyway.
    error_code ignored;
    c->sock.non_blocking(true, ignored);
  }
  SessionCtl ctl;
  ctl.cancel = [weak = std::weak_ptr<Conn<Socket>>(c)] {
    if (auto s = weak.lock()) {
      error_code ignored;
      s->sock.cancel(ignored);
    }
  };
  sh->sessions.insert(&ctl);
  beast::flat_buffer buf;
  try {
    // A connection that sends nothing only holds a slot: its first request
    // has to begin within the short deadline (closed silently otherwise).
    c->arm(std::chrono::milliseconds(
        std::min(sh->limits.first_request_timeout_ms, sh->cfg.request_timeout_ms)));
    auto [wec] = co_await c->sock.async_wait(Socket::wait_read, use_nothrow);
    c->disarm();
    if (!wec && !c->timed_out) {
      while (!sh->stopped && co_await serve_one(*sh, *c, buf, tr, peer, ctl)) {
      }
      if (c->linger) co_await linger_close(*c);
    }
  } catch (const std::exception& e) {
    log()->warn("api session failed what={}", e.what());
  }
  sh->sessions.erase(&ctl);
  c->close();
}

void on_done(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log()->error("api coroutine failed what={}", ex.what());
  }
}

template <class Acceptor>
awaitable<void> accept_loop(std::shared_ptr<Shared> sh, Acceptor& acc, Transport tr) {
  asio::steady_timer pause(acc.get_executor());
  while (!sh->stopped) {
    auto [ec, sock] = co_await acc.async_accept(use_nothrow);
    if (sh->stopped || ec == asio::error::operation_aborted) break;
    if (ec) {
      // EMFILE and friends: back off instead of spinning.
      log()->warn("api accept failed error={}", ec.message());
      pause.expires_after(std::chrono::milliseconds(100));
      co_await pause.async_wait(use_nothrow);
      continue;
    }
    (void)base::set_cloexec(sock.native_handle());  // Asio accepts with accept(2)
    Peer peer = peer_of(sock);
    if (const char* why = sh->admit(tr, peer)) {
      if (sh->refusals->record(peer.name))
        log()->warn("api connection refused transport={} peer={} reason={}",
                    tr == Transport::kUnix ? "unix" : "tcp", peer.name, why);
      error_code ignored;
      sock.close(ignored);
      continue;
    }
    asio::co_spawn(acc.get_executor(), session(sh, std::move(sock), tr, std::move(peer)), on_done);
  }
}

base::Result<void> open_unix(Shared& sh, asio::io_context& io, const std::string& path,
                             const std::string& group) {
  std::optional<gid_t> gid;
  if (!group.empty()) {
    std::vector<char> buf(16384);
    struct group gr {};
    struct group* out = nullptr;
    const int rc = ::getgrnam_r(group.c_str(), &gr, buf.data(), buf.size(), &out);
    if (rc != 0 || !out)
      return fail(Errc::kBadInput, "api socket_group " + group + ": no such group");
    gid = out->gr_gid;
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return fail(Errc::kBadInput, "api socket " + path + " exists and is not a socket");
    ::unlink(path.c_str());  // stale, from an earlier run
  }
  try {
    local_stream::acceptor acc(io);
    acc.open();
    if (!base::set_cloexec(acc.native_handle()))
      return base::fail_errno("api socket cloexec " + path);
    acc.bind(local_stream::endpoint(path));
    // Permissions before listen(): nobody can connect before they are right.
    if (::chmod(path.c_str(), 0660) != 0) return base::fail_errno("api socket chmod " + path);
    if (gid && ::chown(path.c_str(), static_cast<uid_t>(-1), *gid) != 0) {
      const int err = errno;
      ::unlink(path.c_str());
      return tl::unexpected(
          base::Error{Errc::kPermission, err, "api socket chown " + path + " to group " + group});
    }
    acc.listen();
    sh.unix_acceptor.emplace(std::move(acc));
    sh.socket_path = path;
    return {};
  } catch (const boost::system::system_error& e) {
    return tl::unexpected(
        base::Error{Errc::kSyscall, e.code().value(), "api socket " + path + ": " + e.what()});
  }
}

base::Result<void> open_tcp(Shared& sh, asio::io_context& io, const proto::Endpoint& ep,
                            bool allow_public) {
  const std::string where = "api tcp " + proto::format_endpoint(ep);
  error_code ec;
  const auto addr = asio::ip::make_address(ep.host, ec);
  if (ec) return fail(Errc::kBadInput, where + ": not a literal IP address");
  if (!addr.is_loopback() && !allow_public)
    return fail(Errc::kBadInput,
                where + ": not a loopback address (set [api] allow_public = true to allow it)");
  try {
    tcp::acceptor acc(io);
    const tcp::endpoint endpoint(addr, ep.port);
    acc.open(endpoint.protocol());
    if (!base::set_cloexec(acc.native_handle())) return base::fail_errno(where + ": cloexec");
    acc.set_option(tcp::acceptor::reuse_address(true));
    acc.bind(endpoint);
    acc.listen();
    sh.tcp_acceptor.emplace(std::move(acc));
    return {};
  } catch (const boost::system::system_error& e) {
    return tl::unexpected(base::Error{Errc::kSyscall, e.code().value(), where + ": " + e.what()});
  }
}

class ServerImpl final : public ApiServer {
 public:
  explicit ServerImpl(std::shared_ptr<Shared> sh) : sh_(std::move(sh)) {}
  ~ServerImpl() override { stop(); }

  void stop() override {
    if (sh_->stopped) return;
    sh_->stopped = true;
    error_code ignored;
    if (sh_->unix_acceptor) {
      sh_->unix_acceptor->close(ignored);
      ::unlink(sh_->socket_path.c_str());
    }
    if (sh_->tcp_acceptor) sh_->tcp_acceptor->close(ignored);
    for (SessionCtl* s : sh_->sessions)
      if (s->idle) s->cancel();
    sh_->refusals->stop();
    sh_->auth_failures->stop();
  }

  std::uint16_t tcp_port() const override {
    error_code ec;
    if (!sh_->tcp_acceptor) return 0;
    auto ep = sh_->tcp_acceptor->local_endpoint(ec);
    return ec ? 0 : ep.port();
  }

 private:
  std::shared_ptr<Shared> sh_;
};

}  // namespace

Result<std::unique_ptr<ApiServer>> ApiServer::start(asio::io_context& io,
                                                    const supervisor::ApiConfig& cfg,
                                                    const std::string& socket_path,
                                                    const std::string& token_path, Service& service,
                                                    const ConnectionLimits& limits,
                                                    const std::string& fresh_token_hash) {
  TokenState token{token_path, fresh_token_hash};
  if (!fresh_token_hash.empty()) {
    // In force now; the caller stores it once its start has succeeded.
  } else if (auto h = load_token_hash(token_path)) {
    token.hash_hex = std::move(*h);
  } else if (h.error().code != Errc::kNotFound) {
    return tl::unexpected(h.error());
  } else if (cfg.tcp) {
    return fail(Errc::kNotFound, "api tcp " + proto::format_endpoint(*cfg.tcp) +
                                     " needs a bearer token, but there is no token file " +
                                     token_path);
  }
  auto sh = std::make_shared<Shared>(service, cfg, std::move(token), limits, io);
  if (auto r = open_unix(*sh, io, socket_path, cfg.socket_group); !r)
    return tl::unexpected(r.error());
  if (cfg.tcp) {
    if (auto r = open_tcp(*sh, io, *cfg.tcp, cfg.allow_public); !r) {
      error_code ignored;
      sh->unix_acceptor->close(ignored);
      ::unlink(socket_path.c_str());
      return tl::unexpected(r.error());
    }
  }
  asio::co_spawn(io, accept_loop(sh, *sh->unix_acceptor, Transport::kUnix), on_done);
  if (sh->tcp_acceptor)
    asio::co_spawn(io, accept_loop(sh, *sh->tcp_acceptor, Transport::kTcp), on_done);
  log()->info("api listening socket={} tcp={}", socket_path,
              cfg.tcp ? proto::format_endpoint(*cfg.tcp) : std::string("off"));
  return std::unique_ptr<ApiServer>(std::make_unique<ServerImpl>(std::move(sh)));
}

}  // namespace mtw::api
