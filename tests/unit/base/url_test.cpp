#include "base/url.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace mtw::base {
namespace {

using ::testing::HasSubstr;

// The reason a URL is rejected; "<accepted>" when it is not.
std::string reason(std::string_view url) {
  auto u = parse_http_url(url);
  if (u) return "<accepted>";
  EXPECT_EQ(u.error().code, Errc::kBadInput) << url;
  return u.error().context;
}

TEST(HttpUrl, AcceptsHostPortPath) {
  auto u = parse_http_url("http://127.0.0.1:8080/hooks/mtw?a=b");
  ASSERT_TRUE(u) << u.error().context;
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->target, "/hooks/mtw?a=b");
  u = parse_http_url("http://relay.local");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "relay.local");
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->target, "/");
  u = parse_http_url("http://[::1]:9000/x");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 9000);
  EXPECT_EQ(u->target, "/x");
}

TEST(HttpUrl, AcceptsHttps) {
  auto u = parse_http_url("https://hooks.slack.com/services/T0/B0/x");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "hooks.slack.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/services/T0/B0/x");
  u = parse_http_url("https://example.org:8443");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->port, 8443);
  EXPECT_EQ(u->target, "/");
  u = parse_http_url("https://[fd00::1]/h?q=1");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "fd00::1");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/h?q=1");
  u = parse_http_url("https://[::1]:9443/");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->port, 9443);
}

TEST(HttpUrl, AQueryRightAfterTheHostGetsTheRootPath) {
  auto u = parse_http_url("http://x.example?a=1&b=%20");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "x.example");
  EXPECT_EQ(u->target, "/?a=1&b=%20");
}

TEST(HttpUrl, EdgesOfThePortRange) {
  EXPECT_EQ(parse_http_url("http://x:1/")->port, 1);
  EXPECT_EQ(parse_http_url("http://x:65535/")->port, 65535);
  EXPECT_EQ(parse_http_url("https://x:00080/")->port, 80);
  for (const char* bad :
       {"http://x:0/", "http://x:65536/", "https://x:70000/", "http://x:99999999999/",
        "http://x:8a/", "http://x:-1/", "https://[::1]:0/"}) {
    EXPECT_EQ(reason(bad), "port must be a number 1..65535") << bad;
  }
  EXPECT_EQ(reason("http://x:/"), "empty port");
  EXPECT_EQ(reason("https://[::1]:/"), "empty port");
}

TEST(HttpUrl, NamesTheReason) {
  EXPECT_EQ(reason("ftp://x/"), "must start with http:// or https://");
  EXPECT_EQ(reason("HTTPS://x/"), "must start with http:// or https://");
  EXPECT_EQ(reason("https:x"), "must start with http:// or https://");
  EXPECT_EQ(reason(""), "must start with http:// or https://");
  EXPECT_EQ(reason("https://"), "no host");
  EXPECT_EQ(reason("https:///x"), "no host");
  EXPECT_EQ(reason("http://:80/x"), "no host");
  EXPECT_EQ(reason("https://x y/"), "bad character ' ' in the host");
  EXPECT_EQ(reason("https://x_y/"), "bad character '_' in the host");
  EXPECT_EQ(reason(std::string_view("http://x\ny/", 11)), "bad character \\x0a in the host");
  EXPECT_EQ(reason("https://u:p@x/"), "user info (user@) is not supported");
  EXPECT_EQ(reason("http://user@x/"), "user info (user@) is not supported");
  EXPECT_EQ(reason("http://x/#frag"), "fragments (#...) are not supported");
  EXPECT_EQ(reason("http://x#frag"), "fragments (#...) are not supported");
  EXPECT_EQ(reason("http://x/a b"), "bad character ' ' in the path (percent-encode it)");
  EXPECT_EQ(reason("http://x/\xc3\xa9"), "bad character \\xc3 in the path (percent-encode it)");
  EXPECT_EQ(reason("http://[::1/"), "unterminated [IPv6] address");
  EXPECT_EQ(reason("http://[zz]/"), "bad IPv6 address");
  EXPECT_EQ(reason("http://[]/"), "bad IPv6 address");
  EXPECT_EQ(reason("http://[fe80::1%25eth0]/"), "bad IPv6 address");
  // Found by url_fuzz: inet_pton stops at the NUL and judged "::f" alone.
  EXPECT_EQ(reason(std::string_view("http://[::f\0ff:1]/", 18)), "bad IPv6 address");
  EXPECT_EQ(reason("https://[::1]x/"), "junk after the [IPv6] address");
  EXPECT_EQ(reason("http://::1/"), "an IPv6 address must be in [brackets]");
}

TEST(HttpUrl, HostNamesFollowDnsRules) {
  EXPECT_TRUE(parse_http_url("http://a-b.c0.example/"));
  EXPECT_TRUE(parse_http_url("http://" + std::string(63, 'a') + ".example/"));
  EXPECT_THAT(reason("http://" + std::string(64, 'a') + ".example/"), HasSubstr("longer than 63"));
  std::string long_name;
  for (int i = 0; i < 64; ++i) long_name += "abc.";
  long_name += "x";  // 257 characters
  EXPECT_THAT(reason("http://" + long_name + "/"), HasSubstr("longer than 253"));
  for (const char* bad : {"http://a..b/", "http://.a/", "http://a./"})
    EXPECT_THAT(reason(bad), HasSubstr("empty label")) << bad;
  for (const char* bad : {"http://-a/", "http://a-.b/"})
    EXPECT_THAT(reason(bad), HasSubstr("starts or ends with '-'")) << bad;
}

TEST(HttpUrl, NumericHostsMustBeDottedQuads) {
  EXPECT_TRUE(parse_http_url("http://10.0.0.1/"));
  EXPECT_TRUE(parse_http_url("http://1.example/"));
  for (const char* bad :
       {"http://256.1.1.1/", "http://10.1/", "http://2130706433/", "http://a.10/"})
    EXPECT_EQ(reason(bad), "bad IPv4 address") << bad;
}

TEST(HttpUrl, FormatsCanonicallyAndRoundTrips) {
  for (const char* in :
       {"http://x/", "https://x:443/a?b", "http://x:8080/a/b?c=d", "https://[fd00::1]:8443/h",
        "http://[::1]/", "http://x.example?q", "https://x:00080//double"}) {
    auto u = parse_http_url(in);
    ASSERT_TRUE(u) << in;
    auto again = parse_http_url(format_http_url(*u));
    ASSERT_TRUE(again) << format_http_url(*u);
    EXPECT_EQ(*again, *u) << in;
  }
  EXPECT_EQ(format_http_url(*parse_http_url("https://x:443")), "https://x/");
  EXPECT_EQ(format_http_url(*parse_http_url("http://[::1]:8080?q")), "http://[::1]:8080/?q");
}

TEST(HttpUrl, HostHeaderBracketsIpv6AndNamesOnlyOtherPorts) {
  EXPECT_EQ(http_host_header(*parse_http_url("http://x/")), "x");
  EXPECT_EQ(http_host_header(*parse_http_url("http://x:443/")), "x:443");
  EXPECT_EQ(http_host_header(*parse_http_url("https://x:443/")), "x");
  EXPECT_EQ(http_host_header(*parse_http_url("https://[::1]/")), "[::1]");
  EXPECT_EQ(http_host_header(*parse_http_url("http://[::1]:9000/")), "[::1]:9000");
}

TEST(PercentEncode, KeepsOnlyUnreservedBytes) {
  EXPECT_EQ(percent_encode("alice-01._~"), "alice-01._~");
  EXPECT_EQ(percent_encode("a b/c?d&e=f%"), "a%20b%2Fc%3Fd%26e%3Df%25");
  EXPECT_EQ(percent_encode(std::string("\x00\xff", 2)), "%00%FF");
  EXPECT_EQ(percent_encode(""), "");
}

}  // namespace
}  // namespace mtw::base
