// WEB proxy access: capability vectors from the contract
// (../shared/docs/webproxy.md §1.2), the constant-time index, the bridge
// URL and request target, host/path rules, and the client links.
#include "proto/webproxy_access.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace mtw::proto {
namespace {

constexpr std::string_view kHost = "proxy.example.com";
constexpr std::string_view kPath = "dobry-cola-super-app";

Secret secret(std::string_view text) {
  Result<Secret> s = parse_secret(text);
  EXPECT_TRUE(s.has_value()) << text;
  return s ? *s : Secret{};
}
const Secret kPlain = secret("000102030405060708090a0b0c0d0e0f");
const Secret kDd = secret("dd000102030405060708090a0b0c0d0e0f");
const WebProxyAddress kRoot{std::string(kHost), ""};
const WebProxyAddress kWithPath{std::string(kHost), std::string(kPath)};

TEST(WebCapability, V1PlainSecretMatchesContractVector) {
  EXPECT_EQ(web_capability(kPlain, kRoot).value(), "MHLEY5PmW1GWqJkSrlmJpvJUiLhBH_QKy6yKg8a0JPk");
}

TEST(WebCapability, V1DdSecretMatchesContractVector) {
  EXPECT_EQ(web_capability(kDd, kRoot).value(), "IpJrt3e7sKtzPyoXy6w-Zj6GGEvsvclN66JzQEfPYLA");
}

TEST(WebCapability, V2PlainSecretWithPathMatchesContractVector) {
  EXPECT_EQ(web_capability(kPlain, kWithPath).value(),
            "hHz99Xs93EN1j91G9gpNepXwGNNt5YdAFkEVk_LlqdQ");
}

TEST(WebCapability, V2DdSecretWithPathMatchesContractVector) {
  EXPECT_EQ(web_capability(kDd, kWithPath).value(), "TGUkZaevsavLbHvlNWipnRoYxgzZ51ioWvbxgGT3wHo");
}

TEST(WebCapability, IsAlways43Characters) {
  EXPECT_EQ(web_capability(kPlain, WebProxyAddress{"a.bc", ""})->size(), kCapabilityChars);
}

TEST(WebCapability, RefusesFakeTlsSecret) {
  const Secret ee = secret("ee000102030405060708090a0b0c0d0e0f6578616d706c652e636f6d");
  const auto r = web_capability(ee, kRoot);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kBadInput);
}

TEST(WebBridgeUrl, RootAndPathForms) {
  EXPECT_EQ(web_bridge_url(kRoot, "CAP"), "https://proxy.example.com/?bridge=CAP");
  EXPECT_EQ(web_bridge_url(kWithPath, "CAP"),
            "https://proxy.example.com/dobry-cola-super-app/?bridge=CAP");
}

TEST(ConstantTimeEqual, ComparesLengthAndBytes) {
  EXPECT_TRUE(constant_time_equal(std::string_view("abc"), std::string_view("abc")));
  EXPECT_FALSE(constant_time_equal(std::string_view("abc"), std::string_view("abd")));
  EXPECT_FALSE(constant_time_equal(std::string_view("abc"), std::string_view("abcd")));
  EXPECT_TRUE(constant_time_equal(std::string_view(), std::string_view()));
}

std::vector<WebUserSecret> users() {
  return {{7, kPlain}, {9, kDd}, {11, secret("ffeeddccbbaa99887766554433221100")}};
}

TEST(CapabilityIndex, FindsEachUserByTheirCapability) {
  const CapabilityIndex idx(kRoot, users());
  ASSERT_EQ(idx.size(), 3u);
  EXPECT_EQ(idx.find("MHLEY5PmW1GWqJkSrlmJpvJUiLhBH_QKy6yKg8a0JPk"), 7u);
  EXPECT_EQ(idx.find("IpJrt3e7sKtzPyoXy6w-Zj6GGEvsvclN66JzQEfPYLA"), 9u);
  EXPECT_EQ(idx.find(web_capability(users()[2].secret, kRoot).value()), 11u);
}

TEST(CapabilityIndex, UnknownOrTruncatedCapabilityFindsNobody) {
  const CapabilityIndex idx(kRoot, users());
  EXPECT_EQ(idx.find("MHLEY5PmW1GWqJkSrlmJpvJUiLhBH_QKy6yKg8a0JPA"), std::nullopt);
  EXPECT_EQ(idx.find("MHLEY5PmW1GWqJkSrlmJpvJUiLhBH_QKy6yKg8a0JP"), std::nullopt);
  EXPECT_EQ(idx.find(""), std::nullopt);
}

TEST(CapabilityIndex, CapabilityOfAnotherHostFindsNobody) {
  const CapabilityIndex idx(WebProxyAddress{"other.example.com", ""}, users());
  EXPECT_EQ(idx.find("MHLEY5PmW1GWqJkSrlmJpvJUiLhBH_QKy6yKg8a0JPk"), std::nullopt);
}

TEST(CapabilityIndex, SkipsFakeTlsAndCountsDuplicates) {
  std::vector<WebUserSecret> u = users();
  u.push_back({12, secret("ee000102030405060708090a0b0c0d0e0f6578616d706c652e636f6d")});
  u.push_back({13, kPlain});  // same secret as user 7
  const CapabilityIndex idx(kRoot, u);
  EXPECT_EQ(idx.size(), 3u);
  EXPECT_EQ(idx.skipped(), 1u);
  EXPECT_EQ(idx.duplicates(), 1u);
  EXPECT_EQ(idx.find("MHLEY5PmW1GWqJkSrlmJpvJUiLhBH_QKy6yKg8a0JPk"), 7u);  // first listed wins
}

TEST(CapabilityIndex, UserZeroIsFoundNotMistakenForNone) {
  const CapabilityIndex idx(kRoot, {{0, kPlain}});
  EXPECT_EQ(idx.find("MHLEY5PmW1GWqJkSrlmJpvJUiLhBH_QKy6yKg8a0JPk"), 0u);
}

TEST(BridgeTarget, ExtractsCapabilityFromCanonicalRootTarget) {
  const std::string t = "/?bridge=MHLEY5PmW1GWqJkSrlmJpvJUiLhBH_QKy6yKg8a0JPk";
  EXPECT_EQ(parse_bridge_target(t, kRoot).value(), "MHLEY5PmW1GWqJkSrlmJpvJUiLhBH_QKy6yKg8a0JPk");
}

TEST(BridgeTarget, ExtractsCapabilityUnderBasePath) {
  const std::string t = "/dobry-cola-super-app/?bridge=hHz99Xs93EN1j91G9gpNepXwGNNt5YdAFkEVk_LlqdQ";
  EXPECT_EQ(parse_bridge_target(t, kWithPath).value(),
            "hHz99Xs93EN1j91G9gpNepXwGNNt5YdAFkEVk_LlqdQ");
}

TEST(BridgeTarget, OtherPagesAreNotBridges) {
  for (std::string_view t : {"/", "/index.html", "/?q=1", "/api/v1/ws"}) {
    EXPECT_EQ(parse_bridge_target(t, kRoot).error(), BridgeTargetError::kNotBridge) << t;
  }
}

TEST(BridgeTarget, NonCanonicalFormsAreRefused) {
  const std::string cap = "MHLEY5PmW1GWqJkSrlmJpvJUiLhBH_QKy6yKg8a0JPk";
  for (const std::string& t : {
           "/index.html?bridge=" + cap,            // another path
           "/?bridge=" + cap + "&x=1",             // extra parameter
           "/?x=1&bridge=" + cap,                  // parameter first
           "/?bridge=" + cap + "=",                // padding
           "/?bridge=" + cap.substr(0, 42),        // short
           "/?bridge=" + cap.substr(0, 42) + "l",  // spare bits set in the last character
           "/?bridge=" + cap.substr(0, 20) + "+" + cap.substr(21),  // standard alphabet
       }) {
    EXPECT_EQ(parse_bridge_target(t, kRoot).error(), BridgeTargetError::kNonCanonical) << t;
  }
}

TEST(BridgeTarget, RootTargetIsNonCanonicalWhenAPathIsConfigured) {
  EXPECT_EQ(parse_bridge_target("/?bridge=hHz99Xs93EN1j91G9gpNepXwGNNt5YdAFkEVk_LlqdQ", kWithPath)
                .error(),
            BridgeTargetError::kNonCanonical);
}

TEST(WebProxyAddress, LowersHostAndSplitsPath) {
  const auto a = parse_web_proxy_address("Proxy.Example.COM/a1/b_2-x");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->host, "proxy.example.com");
  EXPECT_EQ(a->path, "a1/b_2-x");
}

TEST(WebProxyAddress, RefusesWhatTelegramRefuses) {
  for (std::string_view bad : {
           "",
           "https://proxy.example.com",
           "proxy.example.com:443",
           "proxy.example.com.",
           "localhost",
           "127.0.0.1",
           "127.1",
           "0x7f.1",
           "a.0x",
           "proxy.example.com?x",
           "proxy.example.com#x",
           "user@proxy.example.com",
           "-a.example.com",
           "a-.example.com",
           "a..example.com",
           "xn--bcher-kva.ex ample",
           "b\xc3\xbc"
           "cher.example",
           "proxy.example.com/",
           "proxy.example.com/-a",
           "proxy.example.com/a//b",
           "proxy.example.com/a.b",
           "proxy.example.com/a%2f",
       }) {
    EXPECT_FALSE(parse_web_proxy_address(bad).has_value()) << bad;
  }
}

TEST(WebProxyAddress, LabelAndPathLengthLimits) {
  const std::string label63(63, 'a');
  EXPECT_TRUE(parse_web_proxy_address(label63 + ".com").has_value());
  EXPECT_FALSE(parse_web_proxy_address(label63 + "a.com").has_value());
  EXPECT_TRUE(parse_web_proxy_address("a.com/" + std::string(128, 'p')).has_value());
  EXPECT_FALSE(parse_web_proxy_address("a.com/" + std::string(129, 'p')).has_value());
}

TEST(WebProxyAddress, NumericLabelIsFineWhenNotLast) {
  EXPECT_TRUE(parse_web_proxy_address("127.example.com").has_value());
  EXPECT_TRUE(parse_web_proxy_address("a.0x7g").has_value());  // not hex: a name
}

TEST(WebProxyLinks, PlainSecretAtRoot) {
  const auto l = web_proxy_links(kPlain, kRoot).value();
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0], "tg://webproxy?server=proxy.example.com&secret=000102030405060708090a0b0c0d0e0f");
  EXPECT_EQ(
      l[1],
      "https://t.me/webproxy?server=proxy.example.com&secret=000102030405060708090a0b0c0d0e0f");
}

TEST(WebProxyLinks, DdSecretKeepsItsPrefixAndHasNoPort) {
  const auto l = web_proxy_links(kDd, kRoot).value();
  EXPECT_EQ(l[0],
            "tg://webproxy?server=proxy.example.com&secret=dd000102030405060708090a0b0c0d0e0f");
  EXPECT_EQ(l[0].find("port="), std::string::npos);
}

TEST(WebProxyLinks, BasePathEncodesServerAndMarksSecret) {
  // Secret: base64url(0x70 || secret bytes), computed independently.
  EXPECT_EQ(web_proxy_links(kPlain, kWithPath).value()[0],
            "tg://webproxy?server=proxy.example.com%2Fdobry-cola-super-app"
            "&secret=cAABAgMEBQYHCAkKCwwNDg8");
  EXPECT_EQ(web_proxy_links(kDd, kWithPath).value()[1],
            "https://t.me/webproxy?server=proxy.example.com%2Fdobry-cola-super-app"
            "&secret=cN0AAQIDBAUGBwgJCgsMDQ4P");
}

TEST(WebProxyLinks, RefusesFakeTlsSecret) {
  EXPECT_FALSE(
      web_proxy_links(secret("ee000102030405060708090a0b0c0d0e0f6578616d706c652e636f6d"), kRoot)
          .has_value());
}

}  // namespace
}  // namespace mtw::proto
