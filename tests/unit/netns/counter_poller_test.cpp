// CounterReader::snapshot and CounterPoller in the test's own namespace
// (no privileges needed: any process may dump its namespace's links; the
// loopback is always ifindex 1).
#include "netns/counter_poller.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include <gtest/gtest.h>

namespace mtw::netns {
namespace {

using namespace std::chrono_literals;

std::size_t count_ifindex(const CounterSnapshot& s, int ifindex) {
  return static_cast<std::size_t>(std::count_if(
      s.links.begin(), s.links.end(), [&](const LinkCounters& c) { return c.ifindex == ifindex; }));
}

TEST(CounterSnapshot, HoldsEveryLinkOnceWithTimes) {
  auto reader = CounterReader::open();
  ASSERT_TRUE(reader.has_value()) << reader.error().to_string();
  CounterSnapshot snap;
  snap.links.resize(3);  // stale content must go
  const auto before = std::chrono::steady_clock::now();
  ASSERT_TRUE(reader->snapshot(snap).has_value());
  EXPECT_TRUE(snap.complete);
  EXPECT_GE(snap.started, before);
  EXPECT_LE(snap.started, std::chrono::steady_clock::now());
  EXPECT_GT(snap.wall.count(), 0);
  EXPECT_EQ(count_ifindex(snap, 1), 1u);  // lo
  EXPECT_EQ(count_ifindex(snap, 0), 0u);
  for (const auto& c : snap.links) EXPECT_TRUE(c.name.empty());
}

TEST(CounterPoller, DeliversOnItsOwnThread) {
  auto p = CounterPoller::start();
  ASSERT_TRUE(p.has_value()) << p.error().to_string();
  std::promise<std::pair<std::thread::id, base::Result<CounterSnapshot>>> got;
  auto fut = got.get_future();
  ASSERT_TRUE((*p)->request([&](base::Result<CounterSnapshot> s) {
    got.set_value({std::this_thread::get_id(), std::move(s)});
  }));
  ASSERT_EQ(fut.wait_for(10s), std::future_status::ready);
  auto [tid, snap] = fut.get();
  EXPECT_NE(tid, std::this_thread::get_id());
  ASSERT_TRUE(snap.has_value()) << snap.error().to_string();
  EXPECT_EQ(count_ifindex(*snap, 1), 1u);
}

TEST(CounterPoller, OneRequestAtATime) {
  auto p = CounterPoller::start();
  ASSERT_TRUE(p.has_value());
  CounterPoller& poller = **p;
  std::promise<void> release;
  auto released = release.get_future().share();
  std::atomic<int> calls{0};
  ASSERT_TRUE(poller.request([&, released](base::Result<CounterSnapshot>) {
    ++calls;
    released.wait();  // still "running" until the test lets go
  }));
  EXPECT_TRUE(poller.busy());
  bool second_called = false;
  EXPECT_FALSE(poller.request([&](base::Result<CounterSnapshot>) { second_called = true; }));
  release.set_value();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (poller.busy() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  ASSERT_FALSE(poller.busy());
  EXPECT_EQ(calls.load(), 1);
  EXPECT_FALSE(second_called);  // refused, never queued

  std::promise<void> third;
  auto third_done = third.get_future();
  ASSERT_TRUE(poller.request([&](base::Result<CounterSnapshot>) { third.set_value(); }));
  EXPECT_EQ(third_done.wait_for(10s), std::future_status::ready);
}

TEST(CounterPoller, DestroyWithARequestUnderWayJoinsCleanly) {
  std::atomic<int> calls{0};
  for (int i = 0; i < 20; ++i) {
    auto p = CounterPoller::start();
    ASSERT_TRUE(p.has_value());
    ASSERT_TRUE((*p)->request([&](base::Result<CounterSnapshot>) { ++calls; }));
    p->reset();  // must not hang; `done` ran at most once, never after this
    const int after = calls.load();
    std::this_thread::sleep_for(1ms);
    EXPECT_EQ(calls.load(), after);
  }
  EXPECT_LE(calls.load(), 20);
}

}  // namespace
}  // namespace mtw::netns
