#include "netns/nft.h"

#include <gtest/gtest.h>

namespace mtw::netns {
namespace {

TEST(NftRuleset, ReplacesTableAtomicallyAndMasqueradesPools) {
  auto s = nft_ruleset(NftConfig{"inet", "mtwarden", "mtw", "10.200.0.0/16", "fd6d::/48"});
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->rfind("add table inet mtwarden\ndelete table inet mtwarden\n", 0), 0u);
  EXPECT_NE(s->find("ip saddr 10.200.0.0/16 oifname != \"mtw*\" masquerade"), std::string::npos);
  EXPECT_NE(s->find("ip6 saddr fd6d::/48 oifname != \"mtw*\" masquerade"), std::string::npos);
  EXPECT_NE(s->find("iifname \"mtw*\" oifname \"mtw*\" drop"), std::string::npos);
  EXPECT_NE(s->find("hook input"), std::string::npos);
}

TEST(NftRuleset, OmitsIpv6RuleWithoutIpv6Pool) {
  auto s = nft_ruleset(NftConfig{"inet", "mtwarden", "mtw", "10.200.0.0/16", ""});
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->find("ip6 saddr"), std::string::npos);
}

TEST(NftRuleset, RoutedPoolsKeepForwardingRulesButNoNat) {
  auto s = nft_ruleset(NftConfig{"inet", "mtwarden", "mtw", "10.200.0.0/16", "fd6d::/48", false});
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->find("masquerade"), std::string::npos);
  EXPECT_NE(s->find("iifname \"mtw*\" oifname \"mtw*\" drop"), std::string::npos);
}

TEST(NftRuleset, RejectsTextThatCouldInjectRules) {
  EXPECT_EQ(
      nft_ruleset(NftConfig{"inet", "t; flush ruleset", "mtw", "10.0.0.0/8", ""}).error().code,
      base::Errc::kBadInput);
  EXPECT_EQ(nft_ruleset(NftConfig{"inet", "t", "mtw\"", "10.0.0.0/8", ""}).error().code,
            base::Errc::kBadInput);
  EXPECT_EQ(nft_ruleset(NftConfig{"inet", "t", "mtw", "10.0.0.0/8 accept", ""}).error().code,
            base::Errc::kBadInput);
}

}  // namespace
}  // namespace mtw::netns
