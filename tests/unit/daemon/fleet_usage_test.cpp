// The users' fleet-wide period usage: two stores on one SQLite file stand
// for two hosts sharing a database (the engines answer the same;
// store_pg_privileged_test.cpp runs period_usages on PostgreSQL).
#include "daemon/fleet_usage.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace mtw::daemon {
namespace {

using supervisor::PeriodBounds;
using supervisor::Store;
using supervisor::StoredUser;
using supervisor::Usage;
using supervisor::UsageDelta;

struct TempDb {
  std::string path = ::testing::TempDir() + "/mtw-fleet-usage-" + std::to_string(::getpid()) + "-" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db";
  ~TempDb() {
    std::error_code ec;
    for (const char* ext : {"", "-wal", "-shm"}) std::filesystem::remove(path + ext, ec);
  }
};

Store open_as(const std::string& path, const std::string& host) {
  Store::Options o;
  o.host_name = host;
  auto s = Store::open(path, o);
  EXPECT_TRUE(s) << (s ? "" : s.error().to_string());
  return std::move(*s);
}

class FleetUsageTest : public ::testing::Test {
 protected:
  UserRt& add(Store& s, const std::string& name, const std::string& secret,
              UserState state = UserState::kRunning) {
    StoredUser u;
    u.name = name;
    u.secrets = {secret};
    u.id = s.add_user(u, 1).value();
    UserRt& rt = users_.add(u, {});
    rt.state = state;
    rt.period = period_;
    return rt;
  }

  TempDb db_;
  Store a_ = open_as(db_.path, "host-a");
  Store b_ = open_as(db_.path, "host-b");
  UserRegistry users_;
  PeriodBounds period_{1'700'000'000, 1'702'592'000};
};

TEST_F(FleetUsageTest, EveryHostsStoredBytesReplaceTheRunningFigures) {
  UserRt& alice = add(a_, "alice", "dd000102030405060708090a0b0c0d0e0f");
  UserRt& bob = add(a_, "bob", "dd101112131415161718191a1b1c1d1e1f");
  UserRt& off = add(a_, "off", "dd202122232425262728292a2b2c2d2e2f", UserState::kDisabled);
  // This host stored 100 of alice's bytes and counted them; host B stored
  // 5,000 more of alice's and 7 of bob's, which this host has not seen.
  const UsageDelta mine[] = {{alice.user.id, 40, 60, period_}};
  ASSERT_TRUE(a_.apply_sweep(mine, period_.start + 10));
  alice.period_usage = {40, 60};
  const UsageDelta theirs[] = {{alice.user.id, 1000, 4000, period_},
                               {bob.user.id, 3, 4, period_},
                               {off.user.id, 9, 9, period_}};
  ASSERT_TRUE(b_.apply_sweep(theirs, period_.start + 11));
  FleetUsage f;
  const auto t0 = ipc::Clock::now();
  EXPECT_EQ(f.refresh(a_, users_, t0), 2u);  // the disabled user is not read
  EXPECT_EQ(alice.period_usage, (Usage{1040, 4060}));
  EXPECT_EQ(bob.period_usage, (Usage{3, 4}));
  EXPECT_EQ(off.period_usage, (Usage{}));
  EXPECT_TRUE(f.last_error().empty());
}

TEST_F(FleetUsageTest, ReadsAtMostOncePerInterval) {
  UserRt& alice = add(a_, "alice", "dd000102030405060708090a0b0c0d0e0f");
  FleetUsage f;
  const auto t0 = ipc::Clock::now();
  EXPECT_EQ(f.refresh(a_, users_, t0), 1u);
  const UsageDelta theirs[] = {{alice.user.id, 1, 2, period_}};
  ASSERT_TRUE(b_.apply_sweep(theirs, period_.start + 11));
  EXPECT_EQ(f.refresh(a_, users_, t0 + FleetUsage::kReadInterval - std::chrono::milliseconds(1)),
            0u);
  EXPECT_EQ(alice.period_usage, (Usage{}));
  EXPECT_EQ(f.refresh(a_, users_, t0 + FleetUsage::kReadInterval), 1u);
  EXPECT_EQ(alice.period_usage, (Usage{1, 2}));
}

TEST_F(FleetUsageTest, OnlyTheUsersCurrentPeriodCounts) {
  UserRt& alice = add(a_, "alice", "dd000102030405060708090a0b0c0d0e0f");
  const PeriodBounds before{period_.start - 2'592'000, period_.start};
  const UsageDelta old[] = {{alice.user.id, 500, 500, before}, {alice.user.id, 1, 1, period_}};
  ASSERT_TRUE(b_.apply_sweep(old, period_.start + 1));
  FleetUsage f;
  EXPECT_EQ(f.refresh(a_, users_, ipc::Clock::now()), 1u);
  EXPECT_EQ(alice.period_usage, (Usage{1, 1}));
}

}  // namespace
}  // namespace mtw::daemon
