// Webhook delivery: one draining coroutine per URL while its queue is not
// empty; each attempt is a fresh HTTP/1.1 connection under one deadline.
#include "api/webhooks.h"

#include <deque>

#include <boost/json.hpp>

#include "api/beast.h"
#include "api/json_out.h"
#include "base/log.h"

namespace mtw::api {
namespace {

using namespace detail;
using base::Errc;
using base::fail;

constexpr auto kBackoffFirst = std::chrono::milliseconds(500);
constexpr auto kBackoffMax = std::chrono::seconds(30);
constexpr std::uint32_t kResponseBodyLimit = 64 * 1024;

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("api");
  return l;
}

struct Target {
  Target(asio::any_io_executor ex, HttpUrl u) : url(std::move(u)), backoff(ex) {}
  HttpUrl url;
  std::deque<std::string> queue;  // JSON bodies not yet attempted
  bool running = false;
  beast::tcp_stream* stream = nullptr;  // the attempt in progress, for stop()
  asio::steady_timer backoff;
};

struct State {
  asio::io_context& io;
  WebhookOptions opts;
  std::vector<std::unique_ptr<Target>> targets;
  std::uint64_t delivered = 0, failed = 0, dropped = 0;
  bool stopped = false;
};

std::string where(const HttpUrl& u) { return u.host + ":" + std::to_string(u.port); }

// One POST; true on a 2xx answer within the deadline.
awaitable<bool> attempt(State& st, Target& t, const std::string& body) {
  beast::tcp_stream stream(st.io);
  t.stream = &stream;
  struct Reset {
    Target& t;
    ~Reset() { t.stream = nullptr; }
  } reset{t};
  stream.expires_after(std::chrono::milliseconds(st.opts.timeout_ms));
  tcp::resolver resolver(st.io);
  auto [rec, results] =
      co_await resolver.async_resolve(t.url.host, std::to_string(t.url.port), use_nothrow);
  if (rec || st.stopped) co_return false;
  auto [cec, ep] = co_await stream.async_connect(results, use_nothrow);
  if (cec || st.stopped) co_return false;
  http::request<http::string_body> req{http::verb::post, t.url.target, 11};
  req.set(http::field::host, t.url.host);
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
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  co_return code >= 200 && code < 300;
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

  void stop() override {
    if (st_->stopped) return;
    st_->stopped = true;
    for (auto& t : st_->targets) {
      t->queue.clear();
      t->backoff.cancel();
      if (t->stream) t->stream->cancel();
    }
  }

 private:
  std::shared_ptr<State> st_;
};

bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-';
}

}  // namespace

std::unique_ptr<Webhooks> Webhooks::create(asio::io_context& io, WebhookOptions opts) {
  auto st = std::make_shared<State>(State{io, std::move(opts), {}, 0, 0, 0, false});
  for (const auto& u : st->opts.urls) {
    auto parsed = parse_http_url(u);
    if (!parsed) {
      log()->error("webhook url ignored error={}", parsed.error().context);
      continue;
    }
    st->targets.push_back(std::make_unique<Target>(io.get_executor(), std::move(*parsed)));
  }
  return std::make_unique<WebhooksImpl>(std::move(st));
}

base::Result<HttpUrl> parse_http_url(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  auto bad = [&](std::string why) {
    return fail(Errc::kBadInput, "webhook url: " + why);
  };
  if (url.substr(0, kScheme.size()) != kScheme) return bad("must start with http://");
  std::string_view rest = url.substr(kScheme.size());
  const std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  const std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  HttpUrl out;
  if (authority.find('@') != std::string_view::npos) return bad("user info is not supported");
  std::string_view port_text;
  if (!authority.empty() && authority[0] == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated [IPv6] address");
    out.host = std::string(authority.substr(1, close - 1));
    error_code ec;
    asio::ip::make_address_v6(out.host, ec);
    if (ec) return bad("bad IPv6 address");
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("junk after the IPv6 address");
      port_text = after.substr(1);
      if (port_text.empty()) return bad("empty port");
    }
  } else {
    const auto colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return bad("empty port");
    }
    for (char c : out.host)
      if (!host_char(c)) return bad("bad character in the host");
  }
  if (out.host.empty()) return bad("no host");
  if (!port_text.empty()) {
    if (port_text.size() > 5) return bad("bad port");
    unsigned p = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9') return bad("bad port");
      p = p * 10 + static_cast<unsigned>(c - '0');
    }
    if (p == 0 || p > 65535) return bad("port must be 1..65535");
    out.port = static_cast<std::uint16_t>(p);
  }
  for (char c : path)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '#')
      return bad("bad character in the path");
  out.target = path.empty() ? "/" : std::string(path);
  return out;
}

}  // namespace mtw::api
