#include "conn/buffer_pool.h"

#include <gtest/gtest.h>

namespace mtw::conn {
namespace {

TEST(BufferPool, ReusesReturnedBuffers) {
  BufferPool pool(4);
  std::byte* first;
  {
    auto a = pool.borrow();
    first = a.data();
    EXPECT_EQ(pool.in_use(), 1u);
  }
  EXPECT_EQ(pool.in_use(), 0u);
  EXPECT_EQ(pool.idle(), 1u);
  auto b = pool.borrow();
  EXPECT_EQ(b.data(), first);
}

TEST(BufferPool, KeepsAtMostMaxIdle) {
  BufferPool pool(2);
  {
    std::vector<BufferLease> leases;
    for (int i = 0; i < 5; ++i) leases.push_back(pool.borrow());
    EXPECT_EQ(pool.in_use(), 5u);
  }
  EXPECT_EQ(pool.idle(), 2u);
  EXPECT_EQ(pool.in_use(), 0u);
}

TEST(BufferPool, MovedLeaseReturnsOnce) {
  BufferPool pool(4);
  auto a = pool.borrow();
  BufferLease b = std::move(a);
  EXPECT_FALSE(a);
  b.reset();
  EXPECT_EQ(pool.in_use(), 0u);
  EXPECT_EQ(pool.idle(), 1u);
}

TEST(BufferPool, ShrinkKeepsTheLastPeriodsWorkingSet) {
  BufferPool pool(16);
  {
    std::vector<BufferLease> burst;
    for (int i = 0; i < 10; ++i) burst.push_back(pool.borrow());
  }
  auto held = pool.borrow();  // one stays in use
  EXPECT_EQ(pool.idle(), 9u);
  // The period saw 10 in use, 1 is now: 9 may be needed again, none freed.
  EXPECT_EQ(pool.shrink(), 0u);
  EXPECT_EQ(pool.idle(), 9u);
  // A quiet period (peak 1, in use 1): the burst's buffers go.
  EXPECT_EQ(pool.shrink(), 9u);
  EXPECT_EQ(pool.idle(), 0u);
  EXPECT_EQ(pool.in_use(), 1u);
  held.reset();
  EXPECT_EQ(pool.idle(), 1u);
  // It was in use during this period: kept once, then freed.
  EXPECT_EQ(pool.shrink(), 0u);
  EXPECT_EQ(pool.shrink(), 1u);
}

TEST(BufferPool, ShrinkUnderSteadyUseFreesNothing) {
  BufferPool pool(16);
  for (int round = 0; round < 5; ++round) {
    {
      std::vector<BufferLease> work;
      for (int i = 0; i < 4; ++i) work.push_back(pool.borrow());
    }
    EXPECT_EQ(pool.shrink(), 0u) << round;
    EXPECT_EQ(pool.idle(), 4u);
  }
}

TEST(BufferPool, ReleaseIdleFreesAllButLeases) {
  BufferPool pool(16);
  auto a = pool.borrow();
  { auto b = pool.borrow(), c = pool.borrow(); }
  EXPECT_EQ(pool.release_idle(), 2u);
  EXPECT_EQ(pool.idle(), 0u);
  a.reset();  // a lease outliving the release still comes back
  EXPECT_EQ(pool.idle(), 1u);
  EXPECT_EQ(pool.in_use(), 0u);
  auto d = pool.borrow();  // and the pool still hands out buffers
  EXPECT_TRUE(d);
}

}  // namespace
}  // namespace mtw::conn
