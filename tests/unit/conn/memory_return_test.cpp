#include "conn/memory_return.h"

#include <gtest/gtest.h>

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
  BufferPool pool(64);
  MemoryReturn m;
  {
    std::vector<BufferLease> burst;
    for (int i = 0; i < 20; ++i) burst.push_back(pool.borrow());
    EXPECT_FALSE(m.on_tick(20, pool));
  }
  EXPECT_EQ(pool.idle(), 20u);
  EXPECT_TRUE(m.on_tick(0, pool));
  EXPECT_EQ(pool.idle(), 0u);
  EXPECT_EQ(m.trims(), 1u);
  EXPECT_FALSE(m.on_tick(0, pool));
  EXPECT_EQ(m.trims(), 1u);
}

TEST(MemoryReturn, TickShrinksThePoolUnderLoad) {
  BufferPool pool(64);
  MemoryReturn m;
  auto held = pool.borrow();
  {
    std::vector<BufferLease> burst;
    for (int i = 0; i < 19; ++i) burst.push_back(pool.borrow());
  }
  // The burst's 19 are kept for one period, then freed (>= 1 MiB: a trim).
  EXPECT_FALSE(m.on_tick(5, pool));
  EXPECT_EQ(pool.idle(), 19u);
  EXPECT_TRUE(m.on_tick(5, pool));
  EXPECT_EQ(pool.idle(), 0u);
  EXPECT_EQ(pool.in_use(), 1u);
}

}  // namespace
}  // namespace mtw::conn
