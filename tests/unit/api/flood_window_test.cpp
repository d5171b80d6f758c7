#include "api/flood_window.h"

#include <gtest/gtest.h>

#include <string>

namespace mtw::api::detail {
namespace {

using namespace std::chrono_literals;
using Clock = FloodWindow::Clock;

TEST(FloodWindow, LogsTheFirstEventAndCountsTheRestOfItsWindow) {
  FloodWindow w(10s);
  const auto t0 = Clock::time_point{} + 1h;
  EXPECT_TRUE(w.record("a", t0));
  for (int i = 0; i < 20'000; ++i) EXPECT_FALSE(w.record(i % 2 ? "b" : "c", t0 + 1ms * i / 20));
  EXPECT_EQ(w.window_end(), t0 + 10s);
  EXPECT_FALSE(w.flush(t0 + 9s));  // not over yet
  auto s = w.flush(t0 + 10s);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->count, 20'000u);
  EXPECT_EQ(s->peers, 2u);
  EXPECT_FALSE(s->peers_capped);
}

TEST(FloodWindow, AFloodThatGoesOnGivesOneSummaryPerWindow) {
  FloodWindow w(10s);
  const auto t0 = Clock::time_point{} + 1h;
  int logged = 0, summaries = 0;
  // 2,000 events a second for a minute, the flush timer firing at each end.
  for (int ms = 0; ms < 60'000; ms += 1) {
    const auto now = t0 + 1ms * ms;
    if (w.window_end() && now >= *w.window_end() && w.flush(now)) ++summaries;
    logged += w.record("p", now);
    logged += w.record("q", now);
  }
  EXPECT_EQ(logged, 1);
  EXPECT_EQ(summaries, 5);               // at 10, 20, ..., 50 s; the sixth is still open
  EXPECT_EQ(w.drain()->count, 20'000u);  // 50..60 s
}

TEST(FloodWindow, AQuietWindowEndsTheFlood) {
  FloodWindow w(10s);
  const auto t0 = Clock::time_point{} + 1h;
  EXPECT_TRUE(w.record("a", t0));
  EXPECT_FALSE(w.flush(t0 + 10s));  // nothing after the first: no summary, window closed
  EXPECT_FALSE(w.window_end());
  EXPECT_TRUE(w.record("a", t0 + 11s));  // logged on its own again
}

TEST(FloodWindow, BoundsTheDistinctPeersItTracks) {
  FloodWindow w(10s);
  const auto t0 = Clock::time_point{} + 1h;
  w.record("first", t0);
  for (std::size_t i = 0; i < FloodWindow::kMaxPeers + 10; ++i) w.record(std::to_string(i), t0);
  auto s = w.drain();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->peers, FloodWindow::kMaxPeers);
  EXPECT_TRUE(s->peers_capped);
  EXPECT_FALSE(w.window_end());
}

}  // namespace
}  // namespace mtw::api::detail
