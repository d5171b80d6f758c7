#include "conn/duration.h"

#include <gtest/gtest.h>

namespace mtw::conn {
namespace {

TEST(Duration, SecondsByDefaultSecondsOrMilliseconds) {
  EXPECT_EQ(parse_duration_ms("10").value(), 10'000u);
  EXPECT_EQ(parse_duration_ms("1.5").value(), 1500u);
  EXPECT_EQ(parse_duration_ms("2s").value(), 2000u);
  EXPECT_EQ(parse_duration_ms("250ms").value(), 250u);
  EXPECT_FALSE(parse_duration_ms(""));
  EXPECT_FALSE(parse_duration_ms("ms"));
  EXPECT_FALSE(parse_duration_ms("99999999999"));
}

}  // namespace
}  // namespace mtw::conn
