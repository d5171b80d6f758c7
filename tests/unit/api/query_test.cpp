// Query strings (api/query.h): decoding, duplicates, unknown keys, typed values.
#include "api/query.h"

#include <gtest/gtest.h>

#include "api/dates.h"

namespace mtw::api::detail {
namespace {

TEST(PercentDecode, DecodesEscapesAndPlus) {
  EXPECT_EQ(percent_decode("a%20b+c%2Fd%2f"), "a b c/d/");
  EXPECT_EQ(percent_decode(""), "");
  EXPECT_FALSE(percent_decode("%"));
  EXPECT_FALSE(percent_decode("%2"));
  EXPECT_FALSE(percent_decode("%g0"));
}

TEST(ParseQuery, SplitsDecodesAndRefusesDuplicates) {
  auto q = parse_query("by=month&from=2026%2D01&&flag");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->size(), 3u);
  EXPECT_EQ(q->at("by"), "month");
  EXPECT_EQ(q->at("from"), "2026-01");
  EXPECT_EQ(q->at("flag"), "");
  auto dup = parse_query("a=1&a=2");
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().status, 400);
  EXPECT_EQ(dup.error().field, "a");
  EXPECT_FALSE(parse_query("a=%zz"));
}

TEST(AllowParams, NamesTheFirstUnknownKey) {
  auto q = *parse_query("by=day&frm=2026-01-01");
  auto r = allow_params(q, {"by", "from", "to"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().field, "frm");
  EXPECT_TRUE(allow_params(q, {"by", "frm"}));
}

TEST(QueryUint, DefaultRangeAndGarbage) {
  auto q = *parse_query("n=42&big=1001&neg=-1&junk=4x&empty=");
  EXPECT_EQ(*query_uint(q, "n", 7, 0, 1000), 42u);
  EXPECT_EQ(*query_uint(q, "absent", 7, 0, 1000), 7u);
  for (const char* k : {"big", "neg", "junk", "empty"}) {
    auto r = query_uint(q, k, 7, 0, 1000);
    ASSERT_FALSE(r) << k;
    EXPECT_EQ(r.error().field, k);
    EXPECT_NE(r.error().message.find("0..1000"), std::string::npos) << r.error().message;
  }
}

TEST(QueryDay, DaysAndMonthsWhereAllowed) {
  auto q = *parse_query("d=2026-02-28&m=2026-02&bad=2026-02-30");
  EXPECT_EQ(*query_day(q, "d", 0, false), days_from_civil(2026, 2, 28));
  EXPECT_EQ(*query_day(q, "m", 0, true), days_from_civil(2026, 2, 1));
  EXPECT_EQ(*query_day(q, "absent", 5, false), 5);
  auto r = query_day(q, "m", 0, false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "m must be a date YYYY-MM-DD");
  EXPECT_FALSE(query_day(q, "bad", 0, true));
}

}  // namespace
}  // namespace mtw::api::detail
