// Webhooks against local receivers on the same io_context (single thread):
// each test runs the loop until a condition holds or a deadline passes.
#include "api/webhooks.h"

#include <chrono>
#include <functional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace mtw::api {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// Accepts connections; answers each POST with 200 (or never, when `hang`).
struct Receiver {
  Receiver(asio::io_context& io, std::uint16_t port, bool hang)
      : acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), port)), hang(hang) {
    asio::co_spawn(io, serve(), asio::detached);
  }
  std::uint16_t port() const { return acc.local_endpoint().port(); }

  asio::awaitable<void> serve() {
    for (;;) {
      auto [ec, s] = co_await acc.async_accept(nothrow);
      if (ec) co_return;
      boost::beast::flat_buffer buf;
      http::request<http::string_body> req;
      auto [rec, n] = co_await http::async_read(s, buf, req, nothrow);
      if (rec) continue;
      bodies.push_back(req.body());
      targets.push_back(std::string(req.target()));
      if (hang) {
        held.push_back(std::move(s));
        continue;
      }
      http::response<http::string_body> res{http::status::ok, 11};
      res.prepare_payload();
      co_await http::async_write(s, res, nothrow);
    }
  }

  tcp::acceptor acc;
  bool hang;
  std::vector<std::string> bodies, targets;
  std::vector<tcp::socket> held;
};

bool run_until(asio::io_context& io, std::function<bool()> done, std::chrono::milliseconds max) {
  const auto end = Clock::now() + max;
  while (!done() && Clock::now() < end) {
    io.restart();
    io.run_for(std::chrono::milliseconds(10));
  }
  return done();
}

LiveEvent event(std::uint64_t seq) { return {seq, 1'790'000'000, "alice", "quota_warned", "80%"}; }

std::uint16_t free_port(asio::io_context& io) {
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

TEST(Webhooks, PostsEachEventAsJson) {
  asio::io_context io;
  Receiver rx(io, 0, false);
  auto wh = Webhooks::create(
      io, {{"http://127.0.0.1:" + std::to_string(rx.port()) + "/hook?x=1"}, 1000, 0, 10});
  wh->post(event(7));
  wh->post(event(8));
  ASSERT_TRUE(run_until(io, [&] { return wh->delivered() == 2; }, std::chrono::seconds(5)));
  ASSERT_EQ(rx.bodies.size(), 2u);
  EXPECT_EQ(rx.targets[0], "/hook?x=1");
  auto v = boost::json::parse(rx.bodies[0]);
  EXPECT_EQ(v.at("seq").as_int64(), 7);
  EXPECT_EQ(v.at("user"), "alice");
  EXPECT_EQ(v.at("kind"), "quota_warned");
  EXPECT_EQ(v.at("detail"), "80%");
  EXPECT_EQ(v.at("at").as_int64(), 1'790'000'000);
  EXPECT_EQ(wh->failed(), 0u);
}

TEST(Webhooks, RetriesUntilTheReceiverIsUp) {
  asio::io_context io;
  const std::uint16_t port = free_port(io);
  auto wh = Webhooks::create(io, {{"http://127.0.0.1:" + std::to_string(port) + "/"}, 500, 3, 10});
  wh->post(event(1));
  run_until(io, [] { return false; }, std::chrono::milliseconds(200));  // first attempt refused
  EXPECT_EQ(wh->delivered(), 0u);
  Receiver rx(io, port, false);
  ASSERT_TRUE(run_until(io, [&] { return wh->delivered() == 1; }, std::chrono::seconds(5)));
  ASSERT_EQ(rx.bodies.size(), 1u);
  EXPECT_EQ(boost::json::parse(rx.bodies[0]).at("seq").as_int64(), 1);
  EXPECT_EQ(wh->failed(), 0u);
}

TEST(Webhooks, HungReceiverTimesOutWithoutBlockingTheLoop) {
  asio::io_context io;
  Receiver rx(io, 0, true);
  auto wh = Webhooks::create(io, {{"http://127.0.0.1:" + std::to_string(rx.port())}, 1000, 0, 10});
  int ticks = 0;
  asio::steady_timer tick(io);
  std::function<void()> arm = [&] {
    tick.expires_after(std::chrono::milliseconds(20));
    tick.async_wait([&](boost::system::error_code ec) {
      if (!ec) {
        ++ticks;
        arm();
      }
    });
  };
  arm();
  const auto start = Clock::now();
  wh->post(event(1));
  ASSERT_TRUE(run_until(io, [&] { return wh->failed() == 1; }, std::chrono::seconds(5)));
  const auto took = Clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(950));
  EXPECT_LT(took, std::chrono::seconds(4));
  // The loop kept running other work meanwhile (a 20 ms tick: ~50 expected;
  // the margin absorbs a loaded machine).
  EXPECT_GE(ticks, 10);
  EXPECT_EQ(rx.bodies.size(), 1u);
  EXPECT_EQ(wh->delivered(), 0u);
  tick.cancel();
}

TEST(Webhooks, BoundedQueueDropsTheOldest) {
  asio::io_context io;
  const std::uint16_t port = free_port(io);
  auto wh = Webhooks::create(io, {{"http://127.0.0.1:" + std::to_string(port)}, 200, 0, 2});
  for (std::uint64_t i = 1; i <= 5; ++i) wh->post(event(i));  // loop not run: nothing sent yet
  EXPECT_EQ(wh->dropped(), 3u);
  wh->stop();
  io.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(wh->delivered(), 0u);
}

TEST(ParseHttpUrl, AcceptsHostPortPath) {
  auto u = parse_http_url("http://127.0.0.1:8080/hooks/mtw?a=b");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->target, "/hooks/mtw?a=b");
  u = parse_http_url("http://relay.local");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->target, "/");
  u = parse_http_url("http://[::1]:9000/x");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 9000);
}

TEST(ParseHttpUrl, RejectsEverythingElse) {
  for (const char* bad :
       {"https://x/", "ftp://x", "http://", "http:///x", "http://x:0/", "http://x:65536/",
        "http://x:/", "http://x:8a/", "http://user@x/", "http://x y/", "http://x/a b",
        "http://x/#frag", "http://[::1/", "http://[zz]/", "HTTP//x", "x"}) {
    EXPECT_FALSE(parse_http_url(bad)) << bad;
  }
}

}  // namespace
}  // namespace mtw::api
