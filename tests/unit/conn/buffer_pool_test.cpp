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

}  // namespace
}  // namespace mtw::conn
