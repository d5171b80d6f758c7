#include "base/number.h"

#include <gtest/gtest.h>

namespace mtw::base {
namespace {

TEST(ParseU32, TakesWholeDecimalNumbers) {
  EXPECT_EQ(parse_u32("0").value(), 0u);
  EXPECT_EQ(parse_u32("42").value(), 42u);
  EXPECT_EQ(parse_u32("007").value(), 7u);
  EXPECT_EQ(parse_u32("4294967295").value(), 4294967295u);
}

TEST(ParseU32, RejectsEverythingElseNamingTheText) {
  for (std::string_view text :
       {"", " 1", "1 ", "+1", "-1", "1x", "0x10", "4294967296", "99999999999999999999", "1.5"}) {
    const Result<std::uint32_t> r = parse_u32(text);
    ASSERT_FALSE(r.has_value()) << text;
    EXPECT_EQ(r.error().code, Errc::kBadInput);
    EXPECT_NE(r.error().context.find(std::string(text)), std::string::npos) << text;
  }
}

}  // namespace
}  // namespace mtw::base
