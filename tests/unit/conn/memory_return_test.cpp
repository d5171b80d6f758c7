#include "conn/memory_return.h"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

namespace mtw::conn {
namespace {

TEST(MemoryReturn, SteadyChurnNeverTrims) {
  MemoryReturn m;
  for (std::size_t n : {100u, 120u, 90u, 130u, 110u, 100u, 95u}) EXPECT_FALSE(m.due(n, 0)) << n;
}

TEST(MemoryReturn, AllClosedTrimsOnce) {
  MemoryReturn m;
  EXPECT_FALSE(m.due(0, 0));  // never had one: nothing to return
  EXPECT_FALSE(m.due(3, 0));
  EXPECT_TRUE(m.due(0, 0));
  EXPECT_FALSE(m.due(0, 0));  // still none: already returned
}

TEST(MemoryReturn, FallByAQuarterTrims) {
  MemoryReturn m;
  EXPECT_FALSE(m.due(10'000, 0));
  EXPECT_FALSE(m.due(7'600, 0));  // 24 %: not yet
  EXPECT_TRUE(m.due(7'500, 0));
  EXPECT_FALSE(m.due(7'000, 0));  // the new peak is 7,500
  EXPECT_TRUE(m.due(5'000, 0));
}

TEST(MemoryReturn, SmallFallIsChurn) {
  MemoryReturn m;
  EXPECT_FALSE(m.due(100, 0));
  EXPECT_FALSE(m.due(40, 0));  // fell 60 %, but by fewer than kMinDrop
  EXPECT_TRUE(m.due(36, 0));   // 64 below the peak
}

TEST(MemoryReturn, PoolBuffersFreedTrim) {
  MemoryReturn m;
  EXPECT_FALSE(m.due(50, kBufferSize * 15));
  EXPECT_TRUE(m.due(50, kBufferSize * 16));
}

TEST(MemoryReturn, TickReleasesThePoolWhenEmpty) {
  asio::io_context io{1};
  BufferPool pool(64);
  MemoryReturn m;
  {
    std::vector<BufferLease> burst;
    for (int i = 0; i < 20; ++i) burst.push_back(pool.borrow());
    EXPECT_FALSE(m.on_tick(20, pool, io));
  }
  EXPECT_EQ(pool.idle(), 20u);
  EXPECT_TRUE(m.on_tick(0, pool, io));
  EXPECT_EQ(pool.idle(), 0u);
  EXPECT_EQ(m.trims(), 1u);
  // The follow-up tick frees reactor records; this io never had a socket.
  EXPECT_EQ(m.follow_up_pending(), kReactorStatesReleasable);
  EXPECT_FALSE(m.on_tick(0, pool, io));
  EXPECT_FALSE(m.follow_up_pending());
  EXPECT_FALSE(m.on_tick(0, pool, io));
  EXPECT_EQ(m.trims(), 1u);
}

// Opens `n` sockets on `io` and closes them: n records on the reactor's free list.
void open_and_close(asio::io_context& io, std::size_t n) {
  std::vector<tcp::socket> socks;
  for (std::size_t i = 0; i < n; ++i) {
    socks.emplace_back(io);
    socks.back().open(tcp::v4());
  }
}

TEST(ReactorStates, FreedOnlyAfterACallWithoutReuse) {
  if (!kReactorStatesReleasable) GTEST_SKIP() << "not this Boost version";
  asio::io_context io{1};
  open_and_close(io, 100);
  EXPECT_EQ(release_reactor_states(io), 0u);  // marks the 100
  open_and_close(io, 30);                     // reuses 30 of them: no longer marked
  EXPECT_EQ(release_reactor_states(io), 70u);
  EXPECT_EQ(release_reactor_states(io), 30u);
  EXPECT_EQ(release_reactor_states(io), 0u);
}

TEST(ReactorStates, ReactorWorksAfterARelease) {
  if (!kReactorStatesReleasable) GTEST_SKIP() << "not this Boost version";
  asio::io_context io{1};
  open_and_close(io, 50);
  (void)release_reactor_states(io);
  EXPECT_EQ(release_reactor_states(io), 50u);
  // New sockets get fresh records; a round trip through the reactor
  // (under ASan: no use of a freed record).
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket server(io), client(io);
  std::array<char, 4> got{};
  bool done = false;
  acc.async_accept(server, [&](error_code ec) {
    ASSERT_FALSE(ec);
    asio::async_read(server, asio::buffer(got), [&](error_code rec, std::size_t) {
      EXPECT_FALSE(rec);
      done = true;
    });
  });
  client.async_connect(acc.local_endpoint(), [&](error_code ec) {
    ASSERT_FALSE(ec);
    asio::write(client, asio::buffer("ping", 4));
  });
  io.run_for(std::chrono::seconds(5));
  EXPECT_TRUE(done);
  EXPECT_EQ(std::string(got.data(), got.size()), "ping");
  client.close();
  server.close();
  acc.close();
  (void)release_reactor_states(io);
  EXPECT_EQ(release_reactor_states(io), 3u);
}

TEST(MemoryReturn, TickShrinksThePoolUnderLoad) {
  asio::io_context io{1};
  BufferPool pool(64);
  MemoryReturn m;
  auto held = pool.borrow();
  {
    std::vector<BufferLease> burst;
    for (int i = 0; i < 19; ++i) burst.push_back(pool.borrow());
  }
  // The burst's 19 are kept for one period, then freed (>= 1 MiB: a trim).
  EXPECT_FALSE(m.on_tick(5, pool, io));
  EXPECT_EQ(pool.idle(), 19u);
  EXPECT_TRUE(m.on_tick(5, pool, io));
  EXPECT_EQ(pool.idle(), 0u);
  EXPECT_EQ(pool.in_use(), 1u);
}

}  // namespace
}  // namespace mtw::conn
