// MiddleConn's waiting clients, against a real loopback socket that never
// answers the nonce (the connection stays opening) or a closed port (the
// connection fails at connect).
#include "worker/middle.h"

#include <gtest/gtest.h>

#include <boost/asio/detached.hpp>

#include <optional>

namespace mtw::worker {
namespace {

using namespace std::chrono_literals;

struct Client : MiddleClient {
  void on_middle_answer(proto::ByteSpan) override { ++answers; }
  void on_middle_quick_ack(std::uint32_t) override {}
  void on_middle_closed() override { closed = true; }
  int answers = 0;
  bool closed = false;
};

MiddleSettings settings_for(std::uint16_t port) {
  MiddleSettings st;
  st.proxy_secret.assign(128, std::byte{0x5a});
  auto config = proto::parse_proxy_config(
      "proxy_for 2 127.0.0.1:" + std::to_string(port) + ";\ndefault 2;\n", proto::IpFamily::kV4);
  EXPECT_TRUE(config.has_value());
  st.config = std::move(*config);
  st.pool_size = 1;
  st.connect_timeout_ms = 600'000;  // the connection never times out during a test
  return st;
}

// Runs `io` until `done` or 5 s.
template <class Pred>
void run_until(asio::io_context& io, Pred done) {
  for (int i = 0; i < 50 && !done(); ++i) {
    io.run_for(100ms);
    io.restart();
  }
}

void spawn_wait(asio::io_context& io, std::shared_ptr<MiddleConn> conn, std::uint64_t id,
                std::optional<bool>& out) {
  asio::co_spawn(
      io, [conn, id, &out]() -> awaitable<void> { out = co_await conn->wait_ready(id); },
      asio::detached);
}

// A middle proxy that accepts and then says nothing: the connection stays
// in its nonce exchange.
struct SilentProxy {
  explicit SilentProxy(asio::io_context& io)
      : acceptor(io, {asio::ip::make_address("127.0.0.1"), 0}) {
    acceptor.async_accept([this](error_code ec, tcp::socket s) {
      if (!ec) held.emplace(std::move(s));
    });
  }
  std::uint16_t port() const { return acceptor.local_endpoint().port(); }
  tcp::acceptor acceptor;
  std::optional<tcp::socket> held;
};

TEST(MiddleConn, DetachedClientStopsWaitingWhileTheConnectionOpens) {
  asio::io_context io;
  SilentProxy proxy(io);
  MiddlePool pool(io.get_executor(), settings_for(proxy.port()));
  auto conn = pool.pick(2);
  ASSERT_NE(conn, nullptr);
  Client a, b;
  conn->attach(1, &a);
  conn->attach(2, &b);
  std::optional<bool> ready_a, ready_b;
  spawn_wait(io, conn, 1, ready_a);
  spawn_wait(io, conn, 2, ready_b);
  run_until(io, [&] { return proxy.held.has_value(); });
  ASSERT_TRUE(proxy.held.has_value());
  EXPECT_TRUE(conn->opening());
  EXPECT_FALSE(ready_a.has_value());

  conn->detach(1, true);  // a's Session closed
  run_until(io, [&] { return ready_a.has_value(); });
  ASSERT_TRUE(ready_a.has_value()) << "a closed client stays parked until the connection opens";
  EXPECT_FALSE(*ready_a);
  EXPECT_FALSE(ready_b.has_value()) << "the other client keeps waiting";
  EXPECT_TRUE(conn->opening());
  EXPECT_EQ(pool.stats().clients, 1u);
  EXPECT_FALSE(a.closed);  // detached: never told

  conn->fail("test over", false);
  run_until(io, [&] { return ready_b.has_value(); });
  ASSERT_TRUE(ready_b.has_value());
  EXPECT_FALSE(*ready_b);
  EXPECT_TRUE(b.closed);
  EXPECT_EQ(pool.stats().clients, 0u);
  pool.close_all();
  io.run_for(100ms);
}

TEST(MiddleConn, RefusedConnectWakesWaitersAndOpensTheFallbackWindow) {
  asio::io_context io;
  std::uint16_t port = 0;
  {
    tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
    port = probe.local_endpoint().port();
  }  // closed again: connects are refused
  MiddlePool pool(io.get_executor(), settings_for(port));
  auto conn = pool.pick(2);
  ASSERT_NE(conn, nullptr);
  Client a;
  conn->attach(7, &a);
  std::optional<bool> ready;
  spawn_wait(io, conn, 7, ready);
  run_until(io, [&] { return ready.has_value(); });
  ASSERT_TRUE(ready.has_value());
  EXPECT_FALSE(*ready);
  EXPECT_TRUE(a.closed);
  EXPECT_TRUE(conn->dead());
  EXPECT_TRUE(pool.down(2, Clock::now()));
  EXPECT_TRUE(pool.down(-4, Clock::now())) << "an unknown DC is in the default cluster";
  EXPECT_EQ(pool.stats().errors, 1u);
  EXPECT_EQ(pool.stats().down, 1u);
  pool.close_all();
  io.run_for(100ms);
}

TEST(MiddleConn, WaitOnAnUnattachedIdReturnsAtOnce) {
  asio::io_context io;
  SilentProxy proxy(io);
  MiddlePool pool(io.get_executor(), settings_for(proxy.port()));
  auto conn = pool.pick(2);
  std::optional<bool> ready;
  spawn_wait(io, conn, 99, ready);
  run_until(io, [&] { return ready.has_value(); });
  ASSERT_TRUE(ready.has_value());
  EXPECT_FALSE(*ready);
  pool.close_all();
  io.run_for(100ms);
}

}  // namespace
}  // namespace mtw::worker
