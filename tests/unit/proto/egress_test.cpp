#include "proto/egress.h"

#include <gtest/gtest.h>

namespace mtw::proto {
namespace {

EgressSpec sample() {
  EgressSpec s;
  s.policy.health_interval_ms = 2'000;
  s.policy.health_dc = -2;
  s.policy.failures = 2;
  s.policy.retry_min_ms = 1'000;
  s.policy.retry_max_ms = 8'000;
  s.policy.fallback_direct = true;
  s.upstreams.push_back(
      {"dante", UpstreamType::kSocks5, {"198.18.0.2", 1080}, "alice", "p w%=\n\xff", 3});
  s.upstreams.push_back({"v6", UpstreamType::kSocks4, {"2001:db8::1", 1080}, "bob", "", 1});
  s.upstreams.push_back({"home", UpstreamType::kDirect, {}, "", "", 2});
  return s;
}

TEST(Egress, FormatThenParseIsTheIdentity) {
  const EgressSpec s = sample();
  auto back = parse_egress(format_egress(s));
  ASSERT_TRUE(back.has_value()) << back.error().to_string();
  EXPECT_EQ(*back, s);
}

TEST(Egress, FormatsOneRecordPerLineWithEncodedValues) {
  const std::string text = format_egress(sample());
  EXPECT_NE(text.find("policy health_interval_ms=2000 health_dc=32766 failures=2 "
                      "retry_min_ms=1000 retry_max_ms=8000 fallback_direct=1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("upstream name=dante type=socks5 address=198.18.0.2:1080 weight=3 "
                      "username=alice password=p%20w%25%3D%0A%FF\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("upstream name=v6 type=socks4 address=[2001:db8::1]:1080 weight=1 "
                      "username=bob\n"),
            std::string::npos);
  EXPECT_NE(text.find("upstream name=home type=direct weight=2\n"), std::string::npos);
}

TEST(Egress, EmptyTextIsDirectWithDefaultPolicy) {
  auto s = parse_egress("");
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(s->upstreams.empty());
  EXPECT_EQ(s->policy, EgressPolicy{});
}

TEST(Egress, RejectsMalformedRecordsNamingTheLine) {
  const std::pair<const char*, const char*> cases[] = {
      {"bogus x=1\n", "line 1: unknown record"},
      {"upstream name=a type=socks5\n", "needs an address"},
      {"upstream name=a type=direct address=1.2.3.4:1\n", "has no address"},
      {"upstream name=a type=socks5 address=proxy.example:1080\n", "IP:PORT"},
      {"upstream name=a type=socks9 address=1.2.3.4:1\n", "type must be"},
      {"upstream name=a type=direct weight=0\n", "weight"},
      {"upstream name=a type=direct weight=1001\n", "weight"},
      {"upstream type=direct\n", "needs name and type"},
      {"upstream name=a type=direct\nupstream name=a type=direct\n", "line 2: duplicate"},
      {"upstream name=a type=socks5 address=1.2.3.4:1 username=u\n", "both username and password"},
      {"upstream name=a type=socks4 address=1.2.3.4:1 password=p\n", "only socks5"},
      {"upstream name=a type=direct name=b\n", "repeated key"},
      {"upstream name=a type=direct color=red\n", "unknown upstream key"},
      {"upstream name=a%2 type=direct\n", "escape"},
      {"upstream name=a b type=direct\n", "key=value"},
      {"policy failures=0\n", "failures"},
      {"policy retry_min_ms=10 retry_max_ms=5\n", "retry_min_ms above"},
      {"policy fallback_direct=yes\n", "0 or 1"},
      {"policy\npolicy\n", "second policy"},
  };
  for (const auto& [text, want] : cases) {
    auto r = parse_egress(text);
    ASSERT_FALSE(r.has_value()) << text;
    EXPECT_EQ(r.error().code, base::Errc::kBadInput);
    EXPECT_NE(r.error().context.find(want), std::string::npos)
        << text << " -> " << r.error().context;
  }
}

TEST(Egress, ErrorsNeverEchoCredentials) {
  auto r = parse_egress("upstream name=a type=socks5 address=1.2.3.4:1 username=hunter2\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().context.find("hunter2"), std::string::npos);
}

}  // namespace
}  // namespace mtw::proto
