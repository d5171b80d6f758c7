// CellHost::apply: a counter snapshot taken on another thread, applied to
// the cells as they are when it arrives (the supervisor's sweep).
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "netns/cell.h"
#include "netns/counters.h"
#include "netns/reconcile.h"
#include "tests/unit/netns/netns_fixture.h"

namespace mtw::netns::testing {
namespace {

const ShaperRates kFast{{1'000'000'000, 0}, {1'000'000'000, 0}};

std::unique_ptr<CellHost> open_host(const CellHostConfig& cfg) {
  auto rep = reconcile(cfg);
  EXPECT_TRUE(rep.has_value()) << rep.error().to_string();
  auto host = CellHost::open(cfg);
  EXPECT_TRUE(host.has_value()) << host.error().to_string();
  return host ? std::move(*host) : nullptr;
}

// A snapshot as the supervisor's counter thread takes it: its own reader.
CounterSnapshot take_snapshot() {
  auto reader = CounterReader::open();
  EXPECT_TRUE(reader.has_value());
  CounterSnapshot s;
  if (reader) {
    EXPECT_TRUE(reader->snapshot(s).has_value());
  }
  return s;
}

std::vector<std::string> billed(CellHost& host, const CounterSnapshot& s) {
  std::vector<std::string> names;
  CellHost::CounterFn fn = [&](const std::string& n, const CellCounters&) { names.push_back(n); };
  host.apply(s, &fn);
  return names;
}

TEST(SweepPrivileged, ApplyBillsLiveCellsByIfindexAndIgnoresForeignLinks) {
  MTW_REQUIRE_SANDBOX();
  auto host = open_host(test_config("mtwa"));
  ASSERT_TRUE(host);
  auto a = Cell::create(*host, "1", kFast);
  ASSERT_TRUE(a.has_value()) << a.error().to_string();
  CounterSnapshot s = take_snapshot();
  ASSERT_TRUE(s.complete);
  LinkCounters stranger;
  stranger.ifindex = 1 << 30;  // no such link
  stranger.rx_bytes = 12345;
  s.links.push_back(stranger);
  std::vector<CellCounters> got;
  CellHost::CounterFn fn = [&](const std::string& n, const CellCounters& c) {
    EXPECT_EQ(n, "mtwa1");
    got.push_back(c);
  };
  host->apply(s, &fn);
  ASSERT_EQ(got.size(), 1u);
  // The host end's rx is the cell's upload.
  for (const auto& l : s.links) {
    if (l.ifindex == a->host_ifindex()) {
      EXPECT_EQ(got[0].upload_bytes, l.rx_bytes);
    }
  }
}

TEST(SweepPrivileged, CellCreatedAfterTheDumpStartedIsBilledFromTheNextOne) {
  MTW_REQUIRE_SANDBOX();
  auto host = open_host(test_config("mtwb"));
  ASSERT_TRUE(host);
  CounterSnapshot s = take_snapshot();
  auto b = Cell::create(*host, "1", kFast);
  ASSERT_TRUE(b.has_value());
  // As if the dump had caught the new link: its ifindex may have meant
  // another link when the kernel wrote the entry.
  LinkCounters caught;
  caught.ifindex = b->host_ifindex();
  caught.rx_bytes = 999;
  s.links.push_back(caught);
  EXPECT_TRUE(billed(*host, s).empty());
  EXPECT_EQ(billed(*host, take_snapshot()), std::vector<std::string>{"mtwb1"});
}

TEST(SweepPrivileged, CellDestroyedWhileTheDumpRanIsNotBilled) {
  MTW_REQUIRE_SANDBOX();
  auto host = open_host(test_config("mtwc"));
  ASSERT_TRUE(host);
  auto a = Cell::create(*host, "1", kFast);
  ASSERT_TRUE(a.has_value());
  auto hold = a->open_netns();  // its host end stays until the test lets go
  ASSERT_TRUE(hold.has_value());
  CounterSnapshot s = take_snapshot();  // still holds mtwc1's counters
  ASSERT_TRUE(a->destroy().has_value());
  auto again = Cell::create(*host, "1", kFast);  // same name, new link
  ASSERT_TRUE(again.has_value()) << again.error().to_string();
  EXPECT_TRUE(billed(*host, s).empty());
  EXPECT_EQ(billed(*host, take_snapshot()), std::vector<std::string>{"mtwc1"});
}

TEST(SweepPrivileged, RetiredSlotIsFreedOnlyByACompleteSnapshotTakenAfterTheRetire) {
  MTW_REQUIRE_SANDBOX();
  auto host = open_host(test_config("mtwd"));
  ASSERT_TRUE(host);
  auto a = Cell::create(*host, "1", kFast);
  ASSERT_TRUE(a.has_value());
  const int ifindex = a->host_ifindex();
  CounterSnapshot before = take_snapshot();
  ASSERT_TRUE(a->destroy().has_value());
  ASSERT_TRUE(leftover_links_after("mtwd", 5000).empty());  // the kernel removed the host end
  // Taken before the retire: says nothing about it, even without the link.
  std::erase_if(before.links, [&](const LinkCounters& c) { return c.ifindex == ifindex; });
  host->apply(before, nullptr);
  EXPECT_EQ(host->retiring(), 1u);
  // Interrupted dump: a missing link proves nothing.
  CounterSnapshot partial = take_snapshot();
  partial.complete = false;
  host->apply(partial, nullptr);
  EXPECT_EQ(host->retiring(), 1u);
  EXPECT_EQ(host->pool().in_use(), 1u);
  host->apply(take_snapshot(), nullptr);
  EXPECT_EQ(host->retiring(), 0u);
  EXPECT_EQ(host->pool().in_use(), 0u);
}

}  // namespace
}  // namespace mtw::netns::testing
