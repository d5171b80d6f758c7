// Webhook delivery: one draining coroutine per URL while its queue is not
// empty; each attempt is a fresh HTTP/1.1 connection (TLS for https) under
// one deadline covering name resolution, connect, handshake, write and read.
#include "api/webhooks.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <deque>
#include <optional>

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json.hpp>

#include "api/beast.h"
#include "api/json_out.h"
#include "base/log.h"
#include "base/url.h"

namespace mtw::api {
namespace {

using namespace detail;
namespace ssl = asio::ssl;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using Deadline = asio::steady_timer::time_point;

constexpr auto kBackoffFirst = std::chrono::milliseconds(500);
constexpr auto kBackoffMax = std::chrono::seconds(30);
constexpr std::uint32_t kResponseBodyLimit = 64 * 1024;

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("api");
  return l;
}

struct Target {
  Target(asio::any_io_executor ex, base::HttpUrl u) : url(std::move(u)), backoff(ex) {}
  base::HttpUrl url;
  std::deque<std::string> queue;  // JSON bodies not yet attempted
  bool running = false;
  // The attempt in progress, for stop(): the resolve's wait, then the TCP layer.
  asio::steady_timer* resolving = nullptr;
  beast::tcp_stream* stream = nullptr;
  asio::steady_timer backoff;
};

struct State {
  asio::io_context& io;
  WebhookOptions opts;
  std::vector<std::unique_ptr<Target>> targets;
  std::optional<ssl::context> tls;  // shared by every https attempt; set when one URL is https
  std::uint64_t delivered = 0, failed = 0, dropped = 0, failed_attempts = 0;
  bool stopped = false;
};

std::string where(const base::HttpUrl& u) {
  return (u.tls ? "https://" : "http://") + u.host + ":" + std::to_string(u.port);
}

bool is_ip_literal(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// One context per Webhooks object: TLS 1.2+, peer verification against the
// system store plus `ca_file`. A CA file that no longer loads (the config
// loader checked it) is logged; the system store still applies.
ssl::context make_tls_context(const std::string& ca_file) {
  ssl::context ctx(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  ctx.set_verify_mode(ssl::verify_peer);
  error_code ec;
  ctx.set_default_verify_paths(ec);
  if (ec) log()->warn("webhook tls system CA store not loaded error={}", ec.message());
  if (!ca_file.empty()) {
    ctx.load_verify_file(ca_file, ec);
    if (ec) log()->error("webhook tls CA file not loaded path={} error={}", ca_file, ec.message());
  }
  return ctx;
}

// Why a handshake failed: the certificate verdict when there is one (OpenSSL's
// wording, e.g. "self-signed certificate"), otherwise the TLS error itself.
std::string tls_failure_reason(TlsStream& s, const error_code& ec) {
  const long v = SSL_get_verify_result(s.native_handle());
  if (v != X509_V_OK) return std::string("certificate: ") + X509_verify_cert_error_string(v);
  return ec.message();
}

// The POST and its answer over a connected (and, for https, handshaken) stream.
template <class Stream>
awaitable<bool> exchange(State& st, Target& t, Stream& stream, const std::string& body) {
  http::request<http::string_body> req{http::verb::post, t.url.target, 11};
  req.set(http::field::host, base::http_host_header(t.url));
  req.set(http::field::user_agent, "mtwarden");
  req.set(http::field::content_type, "application/json");
  req.keep_alive(false);
  req.body() = body;
  req.prepare_payload();
  auto [wec, wn] = co_await http::async_write(stream, req, use_nothrow);
  if (wec || st.stopped) co_return false;
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kResponseBodyLimit);
  auto [hec, rn] = co_await http::async_read(stream, buf, parser, use_nothrow);
  if (hec) co_return false;
  const unsigned code = parser.get().result_int();
  // No TLS close_notify exchange: the answer is complete, and a receiver that
  // never answers it must not hold the drain. Closing the socket is enough.
  error_code ignored;
  beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
  co_return code >= 200 && code < 300;
}

// Resolves the target's host by `deadline`. Asio runs getaddrinfo on a helper
// thread that cancel() cannot interrupt (a slow DNS server holds it for
// resolv.conf's timeouts), so the attempt waits on a timer instead: the
// resolve's completion cuts the wait short, the deadline (or stop()) ends it
// and a late answer lands in the shared state and is dropped.
awaitable<std::optional<tcp::resolver::results_type>> resolve(State& st, Target& t,
                                                              Deadline deadline) {
  struct Pending {
    explicit Pending(asio::io_context& io) : resolver(io), wake(io) {}
    tcp::resolver resolver;
    asio::steady_timer wake;
    std::optional<error_code> ec;  // set when the resolve completed
    tcp::resolver::results_type results;
  };
  auto p = std::make_shared<Pending>(st.io);
  p->wake.expires_at(deadline);
  p->resolver.async_resolve(t.url.host, std::to_string(t.url.port),
                            [p](const error_code& ec, tcp::resolver::results_type r) {
                              p->ec = ec;
                              p->results = std::move(r);
                              p->wake.cancel();
                            });
  t.resolving = &p->wake;
  struct Reset {
    Target& t;
    ~Reset() { t.resolving = nullptr; }
  } reset{t};
  co_await p->wake.async_wait(use_nothrow);
  if (!p->ec) {
    p->resolver.cancel();  // only helps when getaddrinfo has not started yet
    if (!st.stopped) log()->warn("webhook resolve timed out receiver={}", where(t.url));
    co_return std::nullopt;
  }
  if (*p->ec || st.stopped) co_return std::nullopt;
  co_return std::move(p->results);
}

// Resolves and connects `stream`, both by `deadline` (which then stays set on
// the stream for the rest of the attempt).
awaitable<bool> connect(State& st, Target& t, beast::tcp_stream& stream, Deadline deadline) {
  auto results = co_await resolve(st, t, deadline);
  if (!results) co_return false;
  stream.expires_at(deadline);
  auto [cec, ep] = co_await stream.async_connect(*results, use_nothrow);
  co_return !cec && !st.stopped;
}

awaitable<bool> attempt_tls(State& st, Target& t, const std::string& body, Deadline deadline) {
  TlsStream stream(st.io, *st.tls);
  beast::tcp_stream& tcp_layer = beast::get_lowest_layer(stream);
  t.stream = &tcp_layer;
  struct Reset {
    Target& t;
    ~Reset() { t.stream = nullptr; }
  } reset{t};
  if (!co_await connect(st, t, tcp_layer, deadline)) co_return false;
  // SNI carries names only (RFC 6066), never an address literal.
  if (!is_ip_literal(t.url.host) &&
      !SSL_set_tlsext_host_name(stream.native_handle(), t.url.host.c_str())) {
    co_return false;
  }
  stream.set_verify_mode(ssl::verify_peer);
  // Boost's check leaves OpenSSL's verdict at "ok" when only the name is
  // wrong; record the mismatch so the log says why.
  stream.set_verify_callback([check = ssl::host_name_verification(t.url.host)](
                                 bool preverified, ssl::verify_context& ctx) {
    const bool ok = check(preverified, ctx);
    if (!ok && X509_STORE_CTX_get_error(ctx.native_handle()) == X509_V_OK)
      X509_STORE_CTX_set_error(ctx.native_handle(), X509_V_ERR_HOSTNAME_MISMATCH);
    return ok;
  });
  auto [hec] = co_await stream.async_handshake(ssl::stream_base::client, use_nothrow);
  if (hec) {
    if (!st.stopped)
      log()->warn("webhook tls handshake failed receiver={} reason={}", where(t.url),
                  hec == beast::error::timeout ? "timeout" : tls_failure_reason(stream, hec));
    co_return false;
  }
  if (st.stopped) co_return false;
  co_return co_await exchange(st, t, stream, body);
}

// One POST; true on a 2xx answer within the deadline.
awaitable<bool> attempt(State& st, Target& t, const std::string& body) {
  const Deadline deadline =
      asio::steady_timer::clock_type::now() + std::chrono::milliseconds(st.opts.timeout_ms);
  if (t.url.tls) co_return co_await attempt_tls(st, t, body, deadline);
  beast::tcp_stream stream(st.io);
  t.stream = &stream;
  struct Reset {
    Target& t;
    ~Reset() { t.stream = nullptr; }
  } reset{t};
  if (!co_await connect(st, t, stream, deadline)) co_return false;
  co_return co_await exchange(st, t, stream, body);
}

awaitable<void> drain(std::shared_ptr<State> st, Target& t) {
  while (!st->stopped && !t.queue.empty()) {
    const std::string body = std::move(t.queue.front());
    t.queue.pop_front();
    bool ok = false;
    auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(kBackoffFirst);
    for (std::uint32_t i = 0; i <= st->opts.retries && !st->stopped; ++i) {
      if (i > 0) {
        t.backoff.expires_after(delay);
        co_await t.backoff.async_wait(use_nothrow);
        if (st->stopped) break;
        delay = std::min<std::chrono::milliseconds>(delay * 2, kBackoffMax);
      }
      ok = co_await attempt(*st, t, body);
      if (ok) break;
      if (!st->stopped) ++st->failed_attempts;
    }
    if (st->stopped) break;
    if (ok) {
      ++st->delivered;
    } else {
      ++st->failed;
      log()->warn("webhook delivery failed receiver={} attempts={}", where(t.url),
                  st->opts.retries + 1);
    }
  }
  t.running = false;
}

class WebhooksImpl final : public Webhooks {
 public:
  explicit WebhooksImpl(std::shared_ptr<State> st) : st_(std::move(st)) {}
  ~WebhooksImpl() override { stop(); }

  void post(const LiveEvent& e) override {
    if (st_->stopped || st_->targets.empty()) return;
    const std::string body = boost::json::serialize(detail::to_json(e));
    for (auto& t : st_->targets) {
      if (st_->opts.queue_limit == 0) {
        ++st_->dropped;
        continue;
      }
      while (t->queue.size() >= st_->opts.queue_limit) {
        t->queue.pop_front();  // the oldest goes: a long-down receiver must not grow memory
        ++st_->dropped;
      }
      t->queue.push_back(body);
      if (!t->running) {
        t->running = true;
        asio::co_spawn(st_->io, drain(st_, *t), [](std::exception_ptr ex) {
          if (!ex) return;
          try {
            std::rethrow_exception(ex);
          } catch (const std::exception& x) {
            log()->error("webhook coroutine failed what={}", x.what());
          }
        });
      }
    }
  }
  std::uint64_t delivered() const override { return st_->delivered; }
  std::uint64_t failed() const override { return st_->failed; }
  std::uint64_t dropped() const override { return st_->dropped; }
  std::uint64_t failed_attempts() const override { return st_->failed_attempts; }

  void stop() override {
    if (st_->stopped) return;
    st_->stopped = true;
    for (auto& t : st_->targets) {
      t->queue.clear();
      t->backoff.cancel();
      if (t->resolving) t->resolving->cancel();
      if (t->stream) t->stream->cancel();
    }
  }

 private:
  std::shared_ptr<State> st_;
};

}  // namespace

std::unique_ptr<Webhooks> Webhooks::create(asio::io_context& io, WebhookOptions opts) {
  auto st =
      std::make_shared<State>(State{io, std::move(opts), {}, std::nullopt, 0, 0, 0, 0, false});
  for (const auto& u : st->opts.urls) {
    auto parsed = base::parse_http_url(u);
    if (!parsed) {
      log()->error("webhook url ignored error=\"{}\"", parsed.error().context);
      continue;
    }
    if (parsed->tls && !st->tls) st->tls.emplace(make_tls_context(st->opts.ca_file));
    st->targets.push_back(std::make_unique<Target>(io.get_executor(), std::move(*parsed)));
  }
  return std::make_unique<WebhooksImpl>(std::move(st));
}

}  // namespace mtw::api
