// Accept, TLS, HTTP/1.1 and routing of the HTTPS front (server.h).
#include <sys/socket.h>

#include <ctime>

#include "proto/random.h"
#include "webfront/front_impl.h"

namespace mtw::webfront {

using namespace detail;

std::uint64_t now_ms() noexcept {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

std::uint64_t wall_ms() noexcept {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

namespace {

constexpr std::size_t kMaxHeaderBytes = 16 * 1024;
constexpr std::size_t kMaxRequestBody = 64 * 1024;

std::array<std::byte, 32> random_key() {
  std::array<std::byte, 32> k{};
  proto::system_random().fill(k);
  return k;
}

std::string random_b64(std::size_t n) {
  std::vector<std::byte> b(n);
  proto::system_random().fill(b);
  return proto::to_base64url(b);
}

std::string http_date() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf, n);
}

ClientAddress address_of(const tcp::socket& s) {
  ClientAddress a;
  error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) return a;
  a.port = ep.port();
  auto addr = ep.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
  }
  if (addr.is_v4()) {
    a.family = 4;
    auto b = addr.to_v4().to_bytes();
    std::memcpy(a.addr.data(), b.data(), b.size());
  } else {
    a.family = 6;
    auto b = addr.to_v6().to_bytes();
    std::memcpy(a.addr.data(), b.data(), b.size());
  }
  return a;
}

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

Response decoy_response(Front::Impl& f, const Request& req) {
  ++f.counters.decoy_responses;
  auto d = f.decoy.lookup(req.method_string(), req.target());
  Response res{static_cast<http::status>(d.status), req.version()};
  res.set(http::field::date, http_date());
  res.set(http::field::content_type, d.content_type);
  if (d.status == 405) res.set(http::field::allow, "GET, HEAD");
  res.keep_alive(req.keep_alive());
  if (req.method() == http::verb::head) {
    res.content_length(d.body.size());
  } else {
    res.body() = std::string(d.body);
    res.prepare_payload();
  }
  return res;
}

Response bridge_response(Front::Impl& f, const Request& req, proto::WebUserId user) {
  ++f.counters.bridge_pages;
  std::string nonce = random_b64(16);
  Response res{http::status::ok, req.version()};
  res.set(http::field::date, http_date());
  res.set(http::field::content_type, "text/html; charset=utf-8");
  res.set(http::field::cache_control, "no-store");
  res.set("Referrer-Policy", "no-referrer");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Permissions-Policy", "camera=(), microphone=(), geolocation=()");
  res.set("Content-Security-Policy", bridge_csp(f.opts.address, nonce));
  res.keep_alive(req.keep_alive());
  res.body() = render_bridge_page(f.issue_bootstrap(user), nonce);
  res.prepare_payload();
  return res;
}

awaitable<void> serve_connection(Front::Impl& f, tcp::socket sock) {
  struct Count {
    Front::Impl& f;
    tcp::socket* sock = nullptr;
    void track(tcp::socket& s) {
      f.live.erase(sock);
      sock = &s;
      f.live.insert(sock);
    }
    ~Count() {
      --f.open_connections;
      f.live.erase(sock);
    }
  } count{f};
  ++f.open_connections;
  const ClientAddress peer = address_of(sock);
  auto ctx = f.certs.context();  // this connection keeps the one it started with
  ssl_stream stream(std::move(sock), *ctx);
  auto& lowest = beast::get_lowest_layer(stream);
  count.track(lowest.socket());
  const auto& lim = f.opts.limits;
  lowest.expires_after(std::chrono::milliseconds(lim.handshake_timeout_ms));
  auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, use_nothrow);
  if (hec) {
    ++f.counters.tls_failures;
    co_return;
  }
  beast::flat_buffer buf;
  bool first = true;
  while (!f.stopped) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kMaxHeaderBytes);
    parser.body_limit(kMaxRequestBody);
    lowest.expires_after(
        std::chrono::milliseconds(first ? lim.handshake_timeout_ms : lim.request_timeout_ms));
    auto [rec, rn] = co_await http::async_read(stream, buf, parser, use_nothrow);
    if (rec) co_return;  // closed, timed out, or not HTTP: nothing more to say
    first = false;
    ++f.counters.requests;
    Request req = parser.release();
    RequestHead head;
    head.method = req.method_string();
    head.target = req.target();
    head.websocket_upgrade = websocket::is_upgrade(req);
    if (auto it = req.find(http::field::sec_websocket_protocol); it != req.end()) {
      head.has_subprotocol = true;
      head.subprotocol = it->value();
    }
    Route route = route_request(head, f.opts.address);
    std::optional<Response> res;
    if (route.kind == Route::Kind::kCarrier) {
      std::string token(route.token);
      if (f.tokens.verify(token, proto::WebTokenKind::kBootstrap, wall_ms())) {
        if (auto pend = f.pending.find(token); pend != f.pending.end()) {
          proto::WebUserId user = pend->second.user;
          proto::WebSessionLimits sl;
          sl.max_streams = lim.max_streams_per_session;
          std::optional<proto::WebSession> session =
              f.counters.sessions_active < lim.max_sessions
                  ? proto::WebSession::start(sl, f.budget_of(user))
                  : std::optional<proto::WebSession>{};
          if (!session) {
            ++f.counters.session_limited;
            f.log->info("session refused user={} reason=session_limit", user);
          } else if (f.redeem_bootstrap(token)) {
            auto ws = std::make_unique<ws_stream>(std::move(stream));
            count.track(beast::get_lowest_layer(*ws).socket());
            std::string entry(proto::kWebSocketProtocolPrefix);
            entry += token;
            ws->set_option(websocket::stream_base::decorator([entry](websocket::response_type& r) {
              r.set(http::field::sec_websocket_protocol, entry);
            }));
            ws->read_message_max(proto::kMaxWebMessageBytes);
            beast::get_lowest_layer(*ws).expires_never();
            websocket::stream_base::timeout t{};
            t.handshake_timeout = std::chrono::milliseconds(lim.handshake_timeout_ms);
            t.idle_timeout = std::chrono::seconds(60);
            t.keep_alive_pings = true;
            ws->set_option(t);
            auto [aec] = co_await ws->async_accept(req, use_nothrow);
            if (aec) co_return;
            co_await run_carrier(f, std::move(ws), std::move(*session), user, peer);
            co_return;
          }
        }
      }
      ++f.counters.carrier_refused;
      res = decoy_response(f, req);
    } else if (route.kind == Route::Kind::kBridge) {
      auto index = f.index;  // a user update during this request does not matter
      if (auto user = index->find(route.capability)) {
        res = bridge_response(f, req, *user);
      } else {
        res = decoy_response(f, req);
      }
    } else {
      res = decoy_response(f, req);
    }
    bool keep = res->keep_alive();
    auto [wec, wn] = co_await http::async_write(stream, *res, use_nothrow);
    if (wec || !keep) break;
  }
  lowest.expires_after(std::chrono::seconds(2));
  co_await stream.async_shutdown(use_nothrow);
}

awaitable<void> accept_loop(Front::Impl& f, tcp::acceptor& acc) {
  while (!f.stopped) {
    auto [ec, sock] = co_await acc.async_accept(use_nothrow);
    if (ec == asio::error::operation_aborted || f.stopped) co_return;
    if (ec) {
      // EMFILE and friends: back off briefly instead of spinning.
      f.log->warn("accept failed error={}", ec.message());
      asio::steady_timer t(f.io, std::chrono::milliseconds(100));
      co_await t.async_wait(use_nothrow);
      continue;
    }
    ++f.counters.connections;
    if (f.open_connections >= f.opts.limits.max_connections) {
      ++f.counters.overload_closed;
      continue;  // sock closes
    }
    error_code oec;
    sock.set_option(tcp::no_delay(true), oec);
    asio::co_spawn(f.io, serve_connection(f, std::move(sock)), [&f](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        f.log->warn("connection failed error={}", x.what());
      }
    });
  }
}

awaitable<void> cert_loop(Front::Impl& f) {
  while (!f.stopped) {
    f.cert_timer->expires_after(std::chrono::milliseconds(f.opts.cert_check_ms));
    auto [ec] = co_await f.cert_timer->async_wait(use_nothrow);
    if (ec || f.stopped) co_return;
    f.check_certs();
  }
}

}  // namespace

Front::Impl::Impl(asio::io_context& io, FrontOptions o, CertStore c, DecoySite d,
                  std::unique_ptr<StreamBackend> b)
    : io(io),
      opts(std::move(o)),
      certs(std::move(c)),
      decoy(std::move(d)),
      backend(std::move(b)),
      tokens(random_key()) {}

std::string Front::Impl::issue_bootstrap(proto::WebUserId user) {
  std::uint64_t now = wall_ms();
  while (!pending_order.empty() &&
         (pending_order.front().first <= now || pending.size() >= kMaxPendingBootstraps)) {
    pending.erase(pending_order.front().second);
    pending_order.pop_front();
  }
  std::uint64_t expires = now + opts.limits.bootstrap_ttl_ms;
  std::string token =
      tokens.issue(proto::WebTokenKind::kBootstrap, expires, proto::system_random());
  pending.emplace(token, Pending{user, expires});
  pending_order.emplace_back(expires, token);
  return token;
}

std::optional<proto::WebUserId> Front::Impl::redeem_bootstrap(std::string_view token) {
  auto it = pending.find(std::string(token));
  if (it == pending.end() || it->second.expires_ms <= wall_ms()) return std::nullopt;
  proto::WebUserId user = it->second.user;
  pending.erase(it);  // its entry in pending_order goes when it expires
  return user;
}

proto::WebUserBudget& Front::Impl::budget_of(proto::WebUserId user) {
  auto& b = budgets[user];
  if (!b) {
    b = std::make_unique<proto::WebUserBudget>(opts.limits.max_sessions_per_user,
                                               opts.limits.max_streams_per_user);
  }
  return *b;
}

void Front::Impl::check_certs() {
  switch (certs.check()) {
    case CertStore::Check::kUnchanged:
      break;
    case CertStore::Check::kReloaded:
      ++counters.cert_reloads;
      log->info("certificate reloaded cert={}", opts.cert_file);
      break;
    case CertStore::Check::kFailed:
      ++counters.cert_failures;
      log->warn("certificate reload failed, keeping the old one error={}",
                certs.error().to_string());
      break;
  }
}

Front::Front(asio::io_context& io, FrontOptions opts, CertStore certs, DecoySite decoy,
             const std::vector<proto::WebUserSecret>& users, std::unique_ptr<StreamBackend> backend)
    : impl_(std::make_unique<Impl>(io, std::move(opts), std::move(certs), std::move(decoy),
                                   std::move(backend))) {
  set_users(users);
}

Front::~Front() = default;

base::Result<void> Front::start() {
  auto& f = *impl_;
  for (int fd : f.opts.listen_fds) {
    int listening = 0;
    socklen_t len = sizeof listening;
    sockaddr_storage local{};
    socklen_t llen = sizeof local;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen) != 0 ||
        (local.ss_family != AF_INET && local.ss_family != AF_INET6)) {
      return base::fail(base::Errc::kBadInput,
                        "--listen-fd " + std::to_string(fd) + ": not a listening TCP socket");
    }
    if (!base::set_cloexec(fd)) return base::fail_errno("fcntl FD_CLOEXEC");
    auto acc = std::make_unique<tcp::acceptor>(f.io);
    error_code ec;
    acc->assign(local.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
    if (ec) return base::fail(base::Errc::kSyscall, "adopt listener: " + ec.message());
    f.acceptors.push_back(std::move(acc));
  }
  for (auto& acc : f.acceptors) {
    asio::co_spawn(f.io, accept_loop(f, *acc), asio::detached);
  }
  f.cert_timer.emplace(f.io);
  asio::co_spawn(f.io, cert_loop(f), asio::detached);
  return {};
}

void Front::stop() {
  auto& f = *impl_;
  f.stopped = true;
  error_code ec;
  for (auto& acc : f.acceptors) acc->close(ec);
  if (f.cert_timer) f.cert_timer->cancel();
  for (tcp::socket* s : f.live) s->close(ec);
}

void Front::set_users(const std::vector<proto::WebUserSecret>& users) {
  auto idx = std::make_shared<proto::CapabilityIndex>(impl_->opts.address, users);
  impl_->log->info("users set web_users={} skipped_ee={} duplicates={}", idx->size(),
                   idx->skipped(), idx->duplicates());
  impl_->index = std::move(idx);
}

const FrontCounters& Front::counters() const noexcept { return impl_->counters; }

std::string Front::counters_line() const {
  const auto& c = impl_->counters;
  std::string s = "connections=" + std::to_string(c.connections);
  auto add = [&s](std::string_view k, std::uint64_t v) {
    s += ' ';
    s += k;
    s += '=';
    s += std::to_string(v);
  };
  add("overload_closed", c.overload_closed);
  add("tls_failures", c.tls_failures);
  add("requests", c.requests);
  add("bridge_pages", c.bridge_pages);
  add("decoy_responses", c.decoy_responses);
  add("carrier_refused", c.carrier_refused);
  add("session_limited", c.session_limited);
  add("sessions_started", c.sessions_started);
  add("sessions_active", c.sessions_active);
  add("streams_opened", c.streams_opened);
  add("backend_failures", c.backend_failures);
  add("bytes_up", c.bytes_up);
  add("bytes_down", c.bytes_down);
  add("cert_reloads", c.cert_reloads);
  add("cert_failures", c.cert_failures);
  for (std::size_t r = 1; r < proto::kWebReasonCount; ++r) {
    auto name = proto::web_reason_name(static_cast<proto::WebReason>(r));
    if (c.session_closes[r]) add("session_" + std::string(name), c.session_closes[r]);
    if (c.stream_closes[r]) add("stream_" + std::string(name), c.stream_closes[r]);
  }
  return s;
}

}  // namespace mtw::webfront
