#include "daemon/fleet_view.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace mtw::daemon {
namespace {

using supervisor::Store;

struct TempDb {
  std::string path = ::testing::TempDir() + "/mtw-fleet-view-" + std::to_string(::getpid()) + "-" +
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

TEST(FleetView, ReadsTheHostsAndMarksTheBackend) {
  TempDb db;
  Store a = open_as(db.path, "alpha");
  Store b = open_as(db.path, "beta");
  FleetView v(supervisor::StoreEngine::kSqlite, "alpha");
  EXPECT_EQ(v.view().read_at, 0);
  const auto t0 = ipc::Clock::now();
  v.refresh(a, 1'700'000'000, t0);
  EXPECT_EQ(v.view().backend, "sqlite");
  EXPECT_EQ(v.view().this_host, "alpha");
  EXPECT_EQ(v.view().read_at, 1'700'000'000);
  EXPECT_TRUE(v.view().last_error.empty());
  ASSERT_EQ(v.view().hosts.size(), 2u);
  EXPECT_EQ(v.view().hosts[0].name, "alpha");
  EXPECT_EQ(v.view().hosts[1].name, "beta");
}

TEST(FleetView, ReadsAtMostOncePerInterval) {
  TempDb db;
  Store a = open_as(db.path, "alpha");
  FleetView v(supervisor::StoreEngine::kPostgresql, "alpha");
  EXPECT_EQ(v.view().backend, "postgresql");
  const auto t0 = ipc::Clock::now();
  v.refresh(a, 100, t0);
  ASSERT_EQ(v.view().hosts.size(), 1u);
  Store c = open_as(db.path, "gamma");  // a host joins
  v.refresh(a, 105, t0 + FleetView::kReadInterval - std::chrono::milliseconds(1));
  EXPECT_EQ(v.view().hosts.size(), 1u);  // not read again yet
  EXPECT_EQ(v.view().read_at, 100);
  v.refresh(a, 110, t0 + FleetView::kReadInterval);
  EXPECT_EQ(v.view().hosts.size(), 2u);
  EXPECT_EQ(v.view().read_at, 110);
}

TEST(FleetView, AFailedReadKeepsTheLastListAndSaysWhy) {
  TempDb db;
  Store a = open_as(db.path, "alpha");
  FleetView v(supervisor::StoreEngine::kSqlite, "alpha");
  const auto t0 = ipc::Clock::now();
  v.refresh(a, 100, t0);
  ASSERT_EQ(v.view().hosts.size(), 1u);
  // A store at an older schema refuses every call but its version.
  TempDb old_db;
  Store::Options o;
  o.schema_version = 4;
  auto old = Store::open(old_db.path, o);
  ASSERT_TRUE(old) << old.error().to_string();
  v.refresh(*old, 200, t0 + FleetView::kReadInterval);
  EXPECT_FALSE(v.view().last_error.empty());
  EXPECT_EQ(v.view().hosts.size(), 1u);  // the last good list
  EXPECT_EQ(v.view().read_at, 100);
  v.refresh(a, 300, t0 + 2 * FleetView::kReadInterval);
  EXPECT_TRUE(v.view().last_error.empty());
  EXPECT_EQ(v.view().read_at, 300);
}

}  // namespace
}  // namespace mtw::daemon
