// The thin Beast layer of the API: listeners, sessions with deadlines and
// limits, conversion to/from the pure Handler (handler.h).
#include "api/server.h"

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <set>
#include <tuple>
#include <vector>

#include "api/beast.h"
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

constexpr std::size_t kMaxConnections = 256;
constexpr std::uint32_t kHeaderLimit = 16 * 1024;
constexpr auto kErrorWriteTimeout = std::chrono::seconds(2);  // 408/413 on the way out
constexpr auto kLingerTimeout = std::chrono::milliseconds(500);
constexpr std::size_t kLingerMaxBytes = 1 << 20;

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

struct Shared {
  Shared(Service& s, const supervisor::ApiConfig& c, TokenState t)
      : cfg(c), token(std::move(t)), handler(s, c.secret_grace_s, token) {}
  supervisor::ApiConfig cfg;
  TokenState token;
  Handler handler;
  std::optional<local_stream::acceptor> unix_acceptor;
  std::optional<tcp::acceptor> tcp_acceptor;
  std::string socket_path;
  std::size_t active = 0;
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
                          SessionCtl& ctl) {
  http::request_parser<http::string_body> parser;
  parser.body_limit(sh.cfg.body_limit);
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
        e != http::error::end_of_stream &&
        e != http::error::partial_message)
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
    c.linger = co_await write(c, std::move(*denied), hdr.version(), false, kErrorWriteTimeout);
    co_return false;
  }
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
  HttpRequest hr{std::string(req.method_string()), std::string(req.target()),
                 std::string(req[http::field::content_type]),
                 std::string(req[http::field::authorization]), std::move(req.body()), tr};
  HttpResponse res = sh.handler.handle(hr);
  const bool keep = req.keep_alive() && !sh.stopped;
  if (log_request)
    log()->debug("api request transport={} method={} path={} status={} duration_us={}",
                 tr == Transport::kUnix ? "unix" : "tcp", hr.method, target_path(hr.target),
                 res.status,
                 std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started)
                     .count());
  const bool ok = co_await write(c, std::move(res), req.version(), keep, timeout);
  co_return ok && keep;
}

template <class Socket>
awaitable<void> session(std::shared_ptr<Shared> sh, Socket sock, Transport tr) {
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
  ++sh->active;
  sh->sessions.insert(&ctl);
  beast::flat_buffer buf;
  try {
    while (!sh->stopped && co_await serve_one(*sh, *c, buf, tr, ctl)) {
    }
    if (c->linger) co_await linger_close(*c);
  } catch (const std::exception& e) {
    log()->warn("api session failed what={}", e.what());
  }
  sh->sessions.erase(&ctl);
  --sh->active;
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
    if (sh->active >= kMaxConnections) {
      log()->warn("api connection refused reason=too_many active={}", sh->active);
      error_code ignored;
      sock.close(ignored);
      continue;
    }
    asio::co_spawn(acc.get_executor(), session(sh, std::move(sock), tr), on_done);
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
    if (!base::set_cloexec(acc.native_handle())) return base::fail_errno("api socket cloexec " + path);
    acc.bind(local_stream::endpoint(path));
    // Permissions before listen(): nobody can connect before they are right.
    if (::chmod(path.c_str(), 0660) != 0) return base::fail_errno("api socket chmod " + path);
    if (gid && ::chown(path.c_str(), static_cast<uid_t>(-1), *gid) != 0) {
      const int err = errno;
      ::unlink(path.c_str());
      return tl::unexpected(base::Error{Errc::kPermission, err,
                                        "api socket chown " + path + " to group " + group});
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
                                                    const std::string& token_path,
                                                    Service& service) {
  TokenState token{token_path, ""};
  if (auto h = load_token_hash(token_path)) {
    token.hash_hex = std::move(*h);
  } else if (h.error().code != Errc::kNotFound) {
    return tl::unexpected(h.error());
  } else if (cfg.tcp) {
    return fail(Errc::kNotFound, "api tcp " + proto::format_endpoint(*cfg.tcp) +
                                     " needs a bearer token, but there is no token file " +
                                     token_path);
  }
  auto sh = std::make_shared<Shared>(service, cfg, std::move(token));
  if (auto r = open_unix(*sh, io, socket_path, cfg.socket_group); !r) return tl::unexpected(r.error());
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
