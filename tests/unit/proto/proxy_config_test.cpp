#include "proto/proxy_config.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace mtw::proto {
namespace {

using testing::hex;

// Shaped like core.telegram.org/getProxyConfig.
constexpr std::string_view kV4 =
    "# force_probability 10 10\n"
    "default 2;\n"
    "proxy_for 1 149.154.175.50:8888;\n"
    "proxy_for -1 149.154.175.50:8888;\n"
    "proxy_for 2 149.154.161.144:8888;\n"
    "proxy_for 2 149.154.162.123:8888;\n"
    "proxy_for -2 149.154.164.250:8888;\n"
    "proxy_for 203 91.105.192.100:8888;\n";

constexpr std::string_view kV6 =
    "default 2;\n"
    "proxy_for 1 [2001:b28:f23d:f001::d]:8888;\n"
    "proxy_for -1 [2001:b28:f23d:f001::d]:8888;\n"
    "proxy_for 2 [2001:67c:04e8:f002::d]:80;\n";

Error parse_error(std::string_view text, IpFamily f = IpFamily::kV4) {
  const Result<ProxyConfig> r = parse_proxy_config(text, f);
  EXPECT_FALSE(r.has_value()) << text;
  return r ? Error{} : r.error();
}

TEST(ProxyConfig, ParsesClustersByTheSignedDcInFileOrder) {
  const Result<ProxyConfig> cfg = parse_proxy_config(kV4, IpFamily::kV4);
  ASSERT_TRUE(cfg.has_value()) << cfg.error().to_string();
  EXPECT_EQ(cfg->default_dc, 2);
  ASSERT_EQ(cfg->clusters.size(), 5u);
  const std::vector<Endpoint> dc2 = {{"149.154.161.144", 8888}, {"149.154.162.123", 8888}};
  EXPECT_EQ(cfg->clusters.at(2), dc2);
  EXPECT_EQ(cfg->clusters.at(-2), (std::vector<Endpoint>{{"149.154.164.250", 8888}}));
  EXPECT_EQ(cfg->clusters.at(203).size(), 1u);
}

TEST(ProxyConfig, UnknownDcsGoToTheDefaultCluster) {
  const Result<ProxyConfig> cfg = parse_proxy_config(kV4, IpFamily::kV4);
  ASSERT_TRUE(cfg.has_value());
  ASSERT_NE(cfg->lookup(-1), nullptr);
  EXPECT_EQ(cfg->lookup(-1)->front().host, "149.154.175.50");
  ASSERT_NE(cfg->lookup(4), nullptr);
  EXPECT_EQ(cfg->lookup(4), &cfg->clusters.at(2));
}

TEST(ProxyConfig, WithoutDefaultAnUnknownDcHasNoCluster) {
  const Result<ProxyConfig> cfg =
      parse_proxy_config("proxy_for 1 149.154.175.50:8888;\n", IpFamily::kV4);
  ASSERT_TRUE(cfg.has_value());
  EXPECT_FALSE(cfg->default_dc.has_value());
  EXPECT_EQ(cfg->lookup(3), nullptr);
}

TEST(ProxyConfig, ParsesTheIpv6FileWithBrackets) {
  const Result<ProxyConfig> cfg = parse_proxy_config(kV6, IpFamily::kV6);
  ASSERT_TRUE(cfg.has_value()) << cfg.error().to_string();
  EXPECT_EQ(cfg->clusters.at(2), (std::vector<Endpoint>{{"2001:67c:04e8:f002::d", 80}}));
}

TEST(ProxyConfig, IgnoresCommentsBlankLinesAndCrlf) {
  const Result<ProxyConfig> cfg = parse_proxy_config(
      "\r\n# comment\n   \n\tproxy_for  1\t149.154.175.50:8888 ; # trailing\r\ndefault 1;",
      IpFamily::kV4);
  ASSERT_TRUE(cfg.has_value()) << cfg.error().to_string();
  EXPECT_EQ(cfg->clusters.at(1).size(), 1u);
  EXPECT_EQ(cfg->default_dc, 1);
}

TEST(ProxyConfig, ErrorsNameTheLine) {
  const Error e = parse_error("default 2;\nproxy_for 2 149.154.161.144:8888\n");
  EXPECT_EQ(e.code, Errc::kBadInput);
  EXPECT_NE(e.context.find("line 2"), std::string::npos) << e.context;
  EXPECT_NE(e.context.find("';'"), std::string::npos) << e.context;
}

TEST(ProxyConfig, RejectsBadDcs) {
  for (const char* dc : {"0", "x", "40000", "+1", "1.5", ""}) {
    const std::string text = "proxy_for " + std::string(dc) + " 149.154.175.50:8888;\n";
    const Error e = parse_error(text);
    EXPECT_NE(e.context.find("line 1"), std::string::npos) << dc << ": " << e.context;
  }
}

TEST(ProxyConfig, RejectsAddressesOfTheWrongFamilyOrNotLiteral) {
  EXPECT_NE(parse_error("proxy_for 1 [2001:b28:f23d:f001::d]:8888;").context.find("IPv4"),
            std::string::npos);
  EXPECT_NE(parse_error("proxy_for 1 149.154.175.50:8888;", IpFamily::kV6).context.find("IPv6"),
            std::string::npos);
  parse_error("proxy_for 1 example.org:8888;");
  parse_error("proxy_for 1 149.154.175:8888;");
  parse_error("proxy_for 1 149.154.175.256:8888;");
  parse_error("proxy_for 1 149.154.175.50;");
  parse_error("proxy_for 1 149.154.175.50:0;");
  parse_error("proxy_for 1 149.154.175.50:65536;");
  parse_error("proxy_for 1 [2001:zz::1]:80;", IpFamily::kV6);
}

TEST(ProxyConfig, RejectsMalformedStatements) {
  parse_error("proxy_for 1;");
  parse_error("proxy_for 1 149.154.175.50:8888 extra;");
  parse_error("proxy 149.154.175.50:8888;");
  parse_error("default;\nproxy_for 1 149.154.175.50:8888;");
  parse_error("proxy_for 1 149.154.175.50:8888; default 1;");
  parse_error(";");
  parse_error(std::string_view("proxy_for 1 149.154.175.50:8888;\0", 33));
}

TEST(ProxyConfig, RejectsASecondDefaultAndADefaultWithoutCluster) {
  EXPECT_NE(parse_error("default 1;\ndefault 2;\nproxy_for 1 149.154.175.50:8888;")
                .context.find("line 2"),
            std::string::npos);
  EXPECT_NE(parse_error("default 4;\nproxy_for 1 149.154.175.50:8888;").context.find("line 1"),
            std::string::npos);
}

TEST(ProxyConfig, RejectsAFileWithoutProxies) {
  EXPECT_NE(parse_error("# nothing\ndefault 2;\n").context.find("no proxy_for"), std::string::npos);
  EXPECT_NE(parse_error("").context.find("no proxy_for"), std::string::npos);
  // An HTML error page instead of the config.
  parse_error("<html><body>502 Bad Gateway</body></html>\n");
}

TEST(ProxyConfig, RejectsAHugeFile) {
  const std::string big(kMaxProxyConfigBytes + 1, '#');
  EXPECT_EQ(parse_error(big).code, Errc::kTooLarge);
}

TEST(ProxySecret, AcceptsTheCurrent128ByteSecret) {
  const Bytes secret = hex(
      "c4f9faca9678e6bb48ad6c7e2ce5c0d24430645d554addeb55419e034da62721d046eaab6e52ab14a95a443ecf"
      "b3463e79a05a66612adf9caeda8be9a80da6986fb0a6ff387af84d88ef3a6413713e5c3377f6e1a3d47d99f5e0"
      "c56eece8f05c54c490b079e31bef82ff0ee8f2b0a32756d249c5f21269816cb7061b265db212");
  EXPECT_TRUE(validate_proxy_secret(secret).has_value());
}

TEST(ProxySecret, EnforcesTheOfficialLengthBounds) {
  Bytes s(kMinProxySecretBytes, std::byte{0x80});
  EXPECT_TRUE(validate_proxy_secret(s).has_value());
  EXPECT_FALSE(validate_proxy_secret(ByteSpan(s).first(31)).has_value());
  s.resize(kMaxProxySecretBytes, std::byte{0x80});
  EXPECT_TRUE(validate_proxy_secret(s).has_value());
  s.push_back(std::byte{0x80});
  const Result<void> r = validate_proxy_secret(s);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().context.find("257 bytes"), std::string::npos) << r.error().context;
  EXPECT_FALSE(validate_proxy_secret({}).has_value());
}

TEST(ProxySecret, RejectsATextFileWithoutEchoingIt) {
  const std::string page = "<html><head><title>404 Not Found</title></head><body></body></html>\n";
  const Result<void> r = validate_proxy_secret(as_bytes(page));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().context.find("text"), std::string::npos);
  EXPECT_EQ(r.error().context.find("404"), std::string::npos);
}

}  // namespace
}  // namespace mtw::proto
