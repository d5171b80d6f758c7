#include "supervisor/backoff.h"

#include <gtest/gtest.h>

namespace mtw::supervisor {
namespace {

using namespace std::chrono_literals;
using Clock = RestartPolicy::Clock;

const Clock::time_point kT0 = Clock::time_point{} + 1000h;

RestartPolicy::Options opts(std::uint32_t limit = 100) {
  RestartPolicy::Options o;
  o.min = 250ms;
  o.max = 4'000ms;
  o.window = 60s;
  o.limit = limit;
  return o;
}

TEST(RestartPolicy, FirstDelayIsMin) {
  RestartPolicy p(opts());
  auto d = p.on_crash(kT0, kT0 + 1s);
  EXPECT_FALSE(d.failed);
  EXPECT_EQ(d.delay, 250ms);
  EXPECT_EQ(p.restarts(), 1u);
}

TEST(RestartPolicy, QuickCrashesDoubleUpToMax) {
  RestartPolicy p(opts());
  auto t = kT0;
  std::vector<std::chrono::milliseconds> got;
  for (int i = 0; i < 8; ++i) {
    auto d = p.on_crash(t, t + 100ms);
    ASSERT_FALSE(d.failed);
    got.push_back(d.delay);
    t += 100ms + d.delay;
  }
  std::vector<std::chrono::milliseconds> want{250ms,  500ms,  1000ms, 2000ms,
                                              4000ms, 4000ms, 4000ms, 4000ms};
  EXPECT_EQ(got, want);
  EXPECT_EQ(p.restarts(), 8u);
}

TEST(RestartPolicy, LongRunResetsStreak) {
  RestartPolicy p(opts());
  auto t = kT0;
  for (int i = 0; i < 4; ++i) t += 10ms + p.on_crash(t, t + 10ms).delay;
  // Ran a whole window: the next delay is min again.
  auto d = p.on_crash(t, t + 60s);
  EXPECT_FALSE(d.failed);
  EXPECT_EQ(d.delay, 250ms);
  // ...and the streak restarts from there.
  t += 60s + d.delay;
  EXPECT_EQ(p.on_crash(t, t + 1s).delay, 500ms);
}

TEST(RestartPolicy, RunJustUnderWindowDoesNotReset) {
  RestartPolicy p(opts());
  p.on_crash(kT0, kT0 + 1s);
  auto t = kT0 + 2s;
  EXPECT_EQ(p.on_crash(t, t + 59'999ms).delay, 500ms);
}

TEST(RestartPolicy, LimitCrashesWithinWindowFail) {
  RestartPolicy p(opts(5));
  auto t = kT0;
  for (int i = 0; i < 4; ++i) {
    auto d = p.on_crash(t, t + 1s);
    ASSERT_FALSE(d.failed) << i;
    t += 1s + d.delay;
  }
  EXPECT_TRUE(p.on_crash(t, t + 1s).failed);
  EXPECT_EQ(p.restarts(), 4u);
}

TEST(RestartPolicy, CrashesSpreadBeyondWindowDoNotFail) {
  // Each run is short (no streak reset) but crashes are 20 s apart: at most
  // 3 fall within any 60 s window, below the limit of 4.
  RestartPolicy p(opts(4));
  auto t = kT0;
  for (int i = 0; i < 20; ++i) {
    auto d = p.on_crash(t, t + 20s);
    ASSERT_FALSE(d.failed) << i;
    t += 20s;
  }
}

TEST(RestartPolicy, ResetForgetsHistory) {
  RestartPolicy p(opts(3));
  auto t = kT0;
  p.on_crash(t, t + 1s);
  p.on_crash(t, t + 2s);
  p.reset();
  auto d = p.on_crash(t, t + 3s);
  EXPECT_FALSE(d.failed);
  EXPECT_EQ(d.delay, 250ms);
  EXPECT_EQ(p.restarts(), 3u);
}

TEST(RestartPolicy, DefaultsRestartWithinOneSecond) {
  RestartPolicy p(RestartPolicy::Options{});
  auto d = p.on_crash(kT0, kT0 + 1ms);
  EXPECT_LE(d.delay, 1000ms);
  EXPECT_GT(d.delay, 0ms);
}

TEST(RestartPolicy, ZeroLimitNeverFails) {
  RestartPolicy p(opts(0));
  for (int i = 0; i < 50; ++i) ASSERT_FALSE(p.on_crash(kT0, kT0 + 1ms).failed);
}

}  // namespace
}  // namespace mtw::supervisor
