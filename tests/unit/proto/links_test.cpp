#include "proto/links.h"

#include <gtest/gtest.h>

#include <string>

namespace mtw::proto {
namespace {

constexpr std::string_view kSimple = "0123456789abcdef0123456789abcdef";
constexpr std::string_view kTls = "ee0123456789abcdef0123456789abcdef6578616d706c652e636f6d";

TEST(ProxyLinks, GivesHexAndBase64ForFakeTls) {
  auto s = parse_secret(kTls).value();
  auto links = proxy_links(s, "::1", 443);
  ASSERT_EQ(links.size(), 4u);
  EXPECT_EQ(links[0], "tg://proxy?server=[::1]&port=443&secret=" + std::string(kTls));
  EXPECT_EQ(links[1], "https://t.me/proxy?server=[::1]&port=443&secret=" + std::string(kTls));
  EXPECT_EQ(links[2].find("tg://proxy?server=[::1]&port=443&secret="), 0u);
  EXPECT_EQ(links[2].substr(links[2].find("secret=") + 7), format_base64url(s));
}

TEST(ProxyLinks, SimpleSecretGetsHexOnly) {
  auto s = parse_secret(kSimple).value();
  auto links = proxy_links(s, "1.2.3.4", 8443);
  ASSERT_EQ(links.size(), 2u);
  EXPECT_EQ(links[0], "tg://proxy?server=1.2.3.4&port=8443&secret=" + std::string(kSimple));
  EXPECT_EQ(links[1], "https://t.me/proxy?server=1.2.3.4&port=8443&secret=" + std::string(kSimple));
}

TEST(ProxyLinks, KeepsABracketedHostAsItIs) {
  auto s = parse_secret(kSimple).value();
  EXPECT_EQ(proxy_links(s, "[2001:db8::1]", 443)[0],
            "tg://proxy?server=[2001:db8::1]&port=443&secret=" + std::string(kSimple));
}

}  // namespace
}  // namespace mtw::proto
