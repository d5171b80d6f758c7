#include "supervisor/child_log.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mtw::supervisor {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct Collected {
  std::vector<std::string> lines;
  std::vector<std::size_t> cuts;
  ChildLogFilter::Emit fn() {
    return [this](std::string_view l, std::size_t cut) {
      lines.emplace_back(l);
      cuts.push_back(cut);
    };
  }
};

TEST(EscapeLogLine, NewlinesEscapesAndQuotesCannotLeaveTheQuotedField) {
  EXPECT_EQ(escape_log_line("a\"b\\c\td"), "a\\\"b\\\\c\\td");
  EXPECT_EQ(escape_log_line("x\ry\n\x1b[31mz"), "x\\x0dy\\x0a\\x1b[31mz");
  EXPECT_EQ(escape_log_line("\x7f\xc3\xa9"), "\\x7f\\xc3\\xa9");
  EXPECT_EQ(escape_log_line("plain text 123 [supervisor]"), "plain text 123 [supervisor]");
}

TEST(ChildLineLevel, TakesTheSpdlogLevelAfterTheTimestamp) {
  EXPECT_EQ(child_line_level("2026-12-07T10:00:00.123 warning [worker] x"), "warning");
  EXPECT_EQ(child_line_level("2026-12-07T10:00:00.123 error [gate] x"), "error");
  EXPECT_EQ(child_line_level("==123==ERROR: AddressSanitizer"), "info");
  EXPECT_EQ(child_line_level("nolevel"), "info");
  EXPECT_EQ(child_line_level("t bogus [x]"), "info");
}

TEST(ChildLogFilter, SplitsLinesAcrossReads) {
  ChildLogFilter f;
  Collected c;
  const auto t = Clock::now();
  f.feed("first li", t, c.fn());
  EXPECT_TRUE(c.lines.empty());
  f.feed("ne\nsecond\nthi", t, c.fn());
  ASSERT_EQ(c.lines.size(), 2u);
  EXPECT_EQ(c.lines[0], "first line");
  EXPECT_EQ(c.lines[1], "second");
  f.finish(t, c.fn());
  ASSERT_EQ(c.lines.size(), 3u);
  EXPECT_EQ(c.lines[2], "thi");
}

TEST(ChildLogFilter, CutsLongLinesAndReportsTheCut) {
  ChildLogLimits l;
  l.max_line_bytes = 10;
  ChildLogFilter f(l);
  Collected c;
  const auto t = Clock::now();
  f.feed(std::string(25, 'a'), t, c.fn());
  f.feed(std::string(5, 'b') + "\nshort\n", t, c.fn());
  ASSERT_EQ(c.lines.size(), 2u);
  EXPECT_EQ(c.lines[0], std::string(10, 'a'));
  EXPECT_EQ(c.cuts[0], 20u);
  EXPECT_EQ(c.lines[1], "short");
  EXPECT_EQ(c.cuts[1], 0u);
}

TEST(ChildLogFilter, AdmitsABurstThenTheRateAndCountsTheRest) {
  ChildLogLimits l;
  l.lines_per_s = 10;
  l.burst_lines = 20;
  ChildLogFilter f(l);
  Collected c;
  const auto t0 = Clock::now();
  std::string flood;
  for (int i = 0; i < 1000; ++i) flood += "line " + std::to_string(i) + "\n";
  f.feed(flood, t0, c.fn());
  EXPECT_EQ(c.lines.size(), 20u);
  EXPECT_EQ(c.lines.front(), "line 0");
  EXPECT_EQ(f.take_dropped(), 980u);
  EXPECT_EQ(f.take_dropped(), 0u);
  // One second later: ten more.
  f.feed(flood, t0 + milliseconds(1000), c.fn());
  EXPECT_EQ(c.lines.size(), 30u);
  EXPECT_EQ(f.dropped(), 990u);
}

TEST(TokenBucket, WaitForIsTheTimeToRefill) {
  TokenBucket b(1000, 1000);
  const auto t = Clock::now();
  EXPECT_EQ(b.wait_for(1, t), Clock::duration::zero());
  b.charge(3000, t);  // 2000 below zero
  const auto w = b.wait_for(1, t);
  EXPECT_GT(w, milliseconds(2000));
  EXPECT_LT(w, milliseconds(2010));
  EXPECT_EQ(b.wait_for(1, t + milliseconds(2002)), Clock::duration::zero());
  EXPECT_FALSE(b.take(1001, t + milliseconds(4000)));  // refill stops at the burst: 1000
  EXPECT_TRUE(b.take(999, t + milliseconds(4000)));
}

}  // namespace
}  // namespace mtw::supervisor
