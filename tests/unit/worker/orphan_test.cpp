#include "worker/orphan.h"

#include <gtest/gtest.h>

namespace mtw::worker {
namespace {

using Clock = Orphanage::Clock;
using std::chrono::milliseconds;

TEST(ControllerAllowed, RootAndTheFirstControllersUidOnly) {
  EXPECT_TRUE(controller_allowed(0, 0));         // the supervisor, root
  EXPECT_FALSE(controller_allowed(70001, 0));    // a worker's uid, even the worker's own
  EXPECT_FALSE(controller_allowed(65534, 0));    // nobody
  EXPECT_TRUE(controller_allowed(1000, 1000));   // an unprivileged parent's own uid
  EXPECT_TRUE(controller_allowed(0, 1000));      // root always (it could ptrace anyway)
  EXPECT_FALSE(controller_allowed(1001, 1000));  // another local user
}

TEST(Orphanage, ZeroTimeoutDrainsAsBefore) {
  Orphanage o(0);
  EXPECT_EQ(o.controller_closed(Clock::now(), false), Orphanage::OnClose::kDrain);
  EXPECT_FALSE(o.orphaned());
  EXPECT_EQ(o.orphanings(), 0u);
}

TEST(Orphanage, ADrainInProgressIsNotInterrupted) {
  Orphanage o(5000);
  EXPECT_EQ(o.controller_closed(Clock::now(), /*draining=*/true), Orphanage::OnClose::kDrain);
  EXPECT_FALSE(o.orphaned());
}

TEST(Orphanage, WaitsUntilTheTimeoutAfterTheClose) {
  Orphanage o(5000);
  const auto t0 = Clock::now();
  ASSERT_EQ(o.controller_closed(t0, false), Orphanage::OnClose::kOrphaned);
  EXPECT_TRUE(o.orphaned());
  EXPECT_EQ(o.since(), t0);
  EXPECT_EQ(o.deadline(), t0 + milliseconds(5000));
  EXPECT_FALSE(o.expired(t0 + milliseconds(4999)));
  EXPECT_TRUE(o.expired(t0 + milliseconds(5000)));
}

TEST(Orphanage, AReattachEndsTheWaitAndTheNextCloseStartsAFullOne) {
  Orphanage o(1000);
  const auto t0 = Clock::now();
  ASSERT_EQ(o.controller_closed(t0, false), Orphanage::OnClose::kOrphaned);
  o.attached();
  EXPECT_FALSE(o.orphaned());
  EXPECT_FALSE(o.expired(t0 + milliseconds(60'000)));  // attached: no deadline
  const auto t1 = t0 + milliseconds(900);
  ASSERT_EQ(o.controller_closed(t1, false), Orphanage::OnClose::kOrphaned);
  EXPECT_EQ(o.deadline(), t1 + milliseconds(1000));
  EXPECT_EQ(o.orphanings(), 2u);
}

}  // namespace
}  // namespace mtw::worker
