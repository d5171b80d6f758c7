#include "netns/names.h"

#include <gtest/gtest.h>

namespace mtw::netns {
namespace {

TEST(ShortId, EncodesBase36) {
  EXPECT_EQ(short_id(0), "0");
  EXPECT_EQ(short_id(35), "z");
  EXPECT_EQ(short_id(36), "10");
  EXPECT_EQ(short_id(~std::uint64_t{0}), "3w5e11264sgsf");  // 13 chars: fits "mtw" + id
}

TEST(MakeNames, UsesPrefixPlusIdForNetnsAndHostEnd) {
  auto n = make_names("mtw", "1a2b");
  ASSERT_TRUE(n.has_value()) << n.error().to_string();
  EXPECT_EQ(n->netns, "mtw1a2b");
  EXPECT_EQ(n->host_if, "mtw1a2b");
  EXPECT_EQ(n->cell_if, "eth0");
}

TEST(MakeNames, AcceptsExactlyFifteenChars) {
  EXPECT_TRUE(make_names("mtw", "abcdefghijkl").has_value());  // 3 + 12 = 15
}

TEST(MakeNames, RejectsNamesOverIfnamsiz) {
  auto n = make_names("mtw", "abcdefghijklm");  // 16 chars
  ASSERT_FALSE(n.has_value());
  EXPECT_EQ(n.error().code, base::Errc::kBadInput);
  EXPECT_NE(n.error().context.find("IFNAMSIZ"), std::string::npos);
}

TEST(MakeNames, RejectsIdsWithForeignCharacters) {
  EXPECT_FALSE(make_names("mtw", "A1").has_value());
  EXPECT_FALSE(make_names("mtw", "a/b").has_value());
  EXPECT_FALSE(make_names("mtw", "").has_value());
  EXPECT_FALSE(make_names("", "1").has_value());
  EXPECT_FALSE(make_names("mt w", "1").has_value());
}

TEST(IsCellName, MatchesOnlyPrefixPlusId) {
  EXPECT_TRUE(is_cell_name("mtw", "mtw1a"));
  EXPECT_FALSE(is_cell_name("mtw", "mtw"));
  EXPECT_FALSE(is_cell_name("mtw", "mtw-x"));
  EXPECT_FALSE(is_cell_name("mtw", "eth0"));
  EXPECT_FALSE(is_cell_name("mtw", "xmtw1"));
}

TEST(ValidIfname, RejectsSlashColonAndDots) {
  EXPECT_TRUE(valid_ifname("eth0"));
  EXPECT_FALSE(valid_ifname("a/b"));
  EXPECT_FALSE(valid_ifname("a:b"));
  EXPECT_FALSE(valid_ifname(".."));
  EXPECT_FALSE(valid_ifname("0123456789abcdef"));
}

}  // namespace
}  // namespace mtw::netns
