#include "daemon/event_log.h"

#include <stdlib.h>

#include <filesystem>

#include <gtest/gtest.h>

namespace mtw::daemon {
namespace {

constexpr supervisor::UnixSeconds kNow = 1'714'521'600;

TEST(EventLog, NumbersEventsAndServesThoseAfterASequenceNumber) {
  EventLog log;
  log.set_capacity(10);
  for (int i = 0; i < 5; ++i) log.record(std::nullopt, "", "reloaded", "", kNow);
  const auto got = log.since(2, 10);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].seq, 3u);
  EXPECT_EQ(got[2].seq, 5u);
  EXPECT_EQ(log.since(2, 1).size(), 1u);
}

TEST(EventLog, KeepsOnlyTheNewestEventsUpToItsCapacity) {
  EventLog log;
  log.set_capacity(3);
  for (int i = 0; i < 7; ++i) log.record(std::nullopt, "", "reloaded", "", kNow);
  const auto got = log.since(0, 100);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got.front().seq, 5u);
  EXPECT_EQ(got.back().seq, 7u);
}

TEST(EventLog, HandsEveryEventToTheSinkWithItsUserName) {
  EventLog log;
  log.set_capacity(10);
  std::vector<api::LiveEvent> seen;
  log.set_sink([&](const api::LiveEvent& e) { seen.push_back(e); });
  log.record(7, "alice", "quota_throttled", "used=10 quota=10", kNow);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].user, "alice");
  EXPECT_EQ(seen[0].kind, "quota_throttled");
  EXPECT_EQ(seen[0].detail, "used=10 quota=10");
  EXPECT_EQ(seen[0].at, kNow);
}

TEST(EventLog, StoresEventsWithTheirUserId) {
  std::string dir = (std::filesystem::temp_directory_path() / "mtw-events-XXXXXX").string();
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  auto store = supervisor::Store::open(dir + "/state.db");
  ASSERT_TRUE(store) << store.error().to_string();
  EventLog log;
  log.set_capacity(10);
  log.set_store(&*store);
  log.record(std::nullopt, "", "started", "users=0", kNow);
  auto rows = store->events(std::nullopt, 10);
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].kind, "started");
  EXPECT_EQ((*rows)[0].detail, "users=0");
  EXPECT_FALSE((*rows)[0].user.has_value());
  log.set_store(nullptr);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mtw::daemon
