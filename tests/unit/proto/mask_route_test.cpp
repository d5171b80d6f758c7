// route_mask(): where a connection that failed its handshake goes.
#include "proto/mask_route.h"

#include <gtest/gtest.h>

#include "proto/fake_tls.h"
#include "test_util.h"

namespace mtw::proto {
namespace {

constexpr std::int64_t kNow = 1'700'000'000;

Secret fake_tls(std::string domain, std::uint8_t fill) {
  Secret s;
  s.kind = SecretKind::kFakeTls;
  s.key.fill(std::byte{fill});
  s.domain = std::move(domain);
  return s;
}

Endpoint ep(std::string host, std::uint16_t port) { return Endpoint{std::move(host), port}; }

class MaskRoute : public ::testing::Test {
 protected:
  UserIndex index{
      {{1, Secret{}}, {2, fake_tls("Site-A.example", 1)}, {3, fake_tls("b.example", 2)}}};
  MaskRoutes routes{.domain_default = true};
  SeededRandom rnd{3};

  // A complete ClientHello naming `sni` (from a stranger's key: its HMAC is nobody's).
  Bytes hello(std::string sni) {
    return build_client_hello(fake_tls(std::move(sni), 9), kNow, rnd);
  }
  static ByteSpan text(std::string_view s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
  }
};

TEST_F(MaskRoute, KnownSniGoesToItsOwnDomainOn443) {
  const auto r = route_mask(routes, 0, hello("b.example"), index);
  EXPECT_EQ(r.action, MaskAction::kMask);
  EXPECT_EQ(r.target, ep("b.example", 443));
  EXPECT_EQ(r.domain, "b.example");
}

TEST_F(MaskRoute, SniIsMatchedCaseInsensitively) {
  const auto r = route_mask(routes, 0, hello("SITE-a.EXAMPLE"), index);
  EXPECT_EQ(r.target, ep("site-a.example", 443));
  EXPECT_EQ(r.domain, "site-a.example");
}

TEST_F(MaskRoute, NonTlsBytesGoToTheFirstFakeTlsDomain) {
  const auto r = route_mask(routes, 0, text("GET / HTTP/1.1\r\n\r\n"), index);
  EXPECT_EQ(r.action, MaskAction::kMask);
  EXPECT_EQ(r.target, ep("site-a.example", 443));
  EXPECT_EQ(r.domain, "site-a.example");
}

TEST_F(MaskRoute, TruncatedHelloHasNoSniAndGoesToTheDefaultDomain) {
  Bytes h = hello("b.example");
  h.resize(100);
  EXPECT_FALSE(hello_sni(h));
  EXPECT_EQ(route_mask(routes, 0, h, index).target, ep("site-a.example", 443));
}

TEST_F(MaskRoute, UnknownSniIsNeverConnectedTo) {
  const auto r = route_mask(routes, 0, hello("evil.example"), index);
  EXPECT_EQ(r.action, MaskAction::kMask);
  EXPECT_EQ(r.target, ep("site-a.example", 443));
}

TEST_F(MaskRoute, UnknownSniDropWhenConfigured) {
  routes.unknown_sni = UnknownSniAction::kDrop;
  EXPECT_EQ(route_mask(routes, 0, hello("evil.example"), index).action, MaskAction::kDrop);
  // Only a hello that names a stranger: no SNI at all is still masked.
  EXPECT_EQ(route_mask(routes, 0, text("SSH-2.0-OpenSSH_9.2\r\n"), index).action,
            MaskAction::kMask);
  EXPECT_EQ(route_mask(routes, 0, hello("b.example"), index).action, MaskAction::kMask);
}

TEST_F(MaskRoute, GlobalAddressReplacesTheDomainDefault) {
  routes.global = ep("10.0.0.1", 8443);
  EXPECT_EQ(route_mask(routes, 0, hello("b.example"), index).target, ep("10.0.0.1", 8443));
  EXPECT_EQ(route_mask(routes, 0, text("x"), index).target, ep("10.0.0.1", 8443));
}

TEST_F(MaskRoute, ListenerRouteBeatsGlobal) {
  routes.global = ep("10.0.0.1", 8443);
  routes.listeners = {{7, ep("10.0.0.7", 443)}};
  EXPECT_EQ(route_mask(routes, 7, hello("b.example"), index).target, ep("10.0.0.7", 443));
  EXPECT_EQ(route_mask(routes, 1, hello("b.example"), index).target, ep("10.0.0.1", 8443));
  // A worker does not know the listener: the global route.
  EXPECT_EQ(route_mask(routes, std::nullopt, hello("b.example"), index).target,
            ep("10.0.0.1", 8443));
}

TEST_F(MaskRoute, DomainRouteBeatsListenerForItsOwnSni) {
  routes.listeners = {{7, ep("10.0.0.7", 443)}};
  routes.domains = {{"b.example", ep("10.0.0.2", 443)}};
  EXPECT_EQ(route_mask(routes, 7, hello("b.example"), index).target, ep("10.0.0.2", 443));
  // Without a known SNI the listener's route is the more specific one.
  EXPECT_EQ(route_mask(routes, 7, text("x"), index).target, ep("10.0.0.7", 443));
}

TEST_F(MaskRoute, DefaultDomainUsesItsDomainRoute) {
  routes.domains = {{"site-a.example", ep("10.0.0.3", 443)}};
  EXPECT_EQ(route_mask(routes, 0, text("x"), index).target, ep("10.0.0.3", 443));
}

TEST_F(MaskRoute, WithoutDomainDefaultAndNoRouteItDiscards) {
  routes.domain_default = false;
  EXPECT_EQ(route_mask(routes, 0, hello("b.example"), index).action, MaskAction::kDiscard);
}

TEST_F(MaskRoute, NoFakeTlsSecretAndNoRouteDiscards) {
  const UserIndex plain{{{1, Secret{}}}};
  EXPECT_EQ(route_mask(routes, 0, text("x"), plain).action, MaskAction::kDiscard);
  routes.global = ep("10.0.0.1", 443);
  EXPECT_EQ(route_mask(routes, 0, text("x"), plain).target, ep("10.0.0.1", 443));
}

TEST(MaskRouteParse, DomainRoute) {
  auto r = parse_domain_route("WWW.Example.com=127.0.0.1:8443");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, "www.example.com");
  EXPECT_EQ(r->second, ep("127.0.0.1", 8443));
  EXPECT_FALSE(parse_domain_route("=127.0.0.1:1"));
  EXPECT_FALSE(parse_domain_route("a.example"));
  EXPECT_FALSE(parse_domain_route("a b=127.0.0.1:1"));
  EXPECT_FALSE(parse_domain_route("a.example=127.0.0.1"));
}

TEST(MaskRouteParse, ListenerRoute) {
  auto r = parse_listener_route("3=[::1]:443");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, 3u);
  EXPECT_EQ(r->second, ep("::1", 443));
  EXPECT_FALSE(parse_listener_route("x=127.0.0.1:1"));
  EXPECT_FALSE(parse_listener_route("4294967296=127.0.0.1:1"));
  EXPECT_FALSE(parse_listener_route("1=nope"));
}

TEST(MaskRouteParse, UnknownSni) {
  EXPECT_EQ(parse_unknown_sni("mask"), UnknownSniAction::kMask);
  EXPECT_EQ(parse_unknown_sni("drop"), UnknownSniAction::kDrop);
  EXPECT_FALSE(parse_unknown_sni("close"));
}

}  // namespace
}  // namespace mtw::proto
