#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>

#include "supervisor/config.h"

namespace mtw::supervisor {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kHead =
    "[[listener]]\nbind = \"0.0.0.0:443\"\n"
    "[[upstream]]\nname = \"fair\"\ntype = \"socks5\"\naddress = \"198.18.0.2:1080\"\n"
    "auth = \"user-name\"\nweight = 3\n"
    "[[upstream]]\nname = \"vault\"\ntype = \"socks5\"\naddress = \"[2001:db8::7]:1080\"\n"
    "auth = \"user-secret\"\n"
    "[[upstream]]\nname = \"corp\"\ntype = \"socks5\"\naddress = \"198.18.0.3:1080\"\n"
    "auth = \"fixed\"\nusername = \"svc\"\npassword = \"svc-pw\"\n"
    "[[upstream]]\nname = \"old\"\ntype = \"socks4\"\naddress = \"198.18.0.4:1080\"\n"
    "auth = \"user-name\"\n"
    "[[upstream]]\nname = \"open\"\ntype = \"socks5\"\naddress = \"198.18.0.5:1080\"\n"
    "[[upstream]]\nname = \"home\"\ntype = \"direct\"\nweight = 2\n";

// Each user gets a key of its own (the loader refuses a shared one).
std::string user(std::string_view name, std::string_view extra = "") {
  static int n = 0;
  char key[33];
  std::snprintf(key, sizeof key, "%032x", ++n);
  return "[[user]]\nname = \"" + std::string(name) + "\"\nsecret = \"" + key + "\"\n" +
         std::string(extra);
}

Config parse(const std::string& text) {
  auto r = parse_config(text, "t.toml");
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().context);
  return r ? *r : Config{};
}

std::string err_of_default(const Config& c) {
  auto r = check_assignment(c, "api-user", {});
  return r ? std::string() : r.error().context;
}

std::string error_of(const std::string& text) {
  auto r = parse_config(text, "t.toml");
  if (r) return "<accepted>";
  return r.error().context;
}

TEST(ConfigEgress, ReadsUpstreamsAndPolicy) {
  const Config c = parse(std::string(kHead) +
                         "[egress]\nupstreams = [\"fair\", \"home\"]\nhealth_interval_ms = 2000\n"
                         "health_dc = -4\nfailures = 2\nretry_min_ms = 500\nretry_max_ms = 9000\n"
                         "all_down = \"direct\"\n");
  ASSERT_EQ(c.upstreams.size(), 6u);
  EXPECT_EQ(c.upstreams[0].type, proto::UpstreamType::kSocks5);
  EXPECT_EQ(c.upstreams[0].address, (proto::Endpoint{"198.18.0.2", 1080}));
  EXPECT_EQ(c.upstreams[0].weight, 3u);
  EXPECT_EQ(c.upstreams[1].address.host, "2001:db8::7");
  EXPECT_EQ(c.upstreams[5].type, proto::UpstreamType::kDirect);
  EXPECT_EQ(c.egress.upstreams, (std::vector<std::string>{"fair", "home"}));
  EXPECT_EQ(c.egress.policy.health_interval_ms, 2000u);
  EXPECT_EQ(c.egress.policy.health_dc, -4);
  EXPECT_EQ(c.egress.policy.failures, 2u);
  EXPECT_EQ(c.egress.policy.retry_min_ms, 500u);
  EXPECT_EQ(c.egress.policy.retry_max_ms, 9000u);
  EXPECT_TRUE(c.egress.policy.fallback_direct);
}

TEST(ConfigEgress, UserNameAuthSendsTheUsersOwnName) {
  const Config c = parse(std::string(kHead) + user("alice", "upstreams = [\"fair\", \"old\"]\n"));
  auto e = egress_for(c, "alice");
  ASSERT_TRUE(e.has_value());
  ASSERT_EQ(e->upstreams.size(), 2u);
  EXPECT_EQ(e->upstreams[0].username, "alice");
  EXPECT_EQ(e->upstreams[0].password, "alice");
  EXPECT_EQ(e->upstreams[0].weight, 3u);
  EXPECT_EQ(e->upstreams[1].type, proto::UpstreamType::kSocks4);
  EXPECT_EQ(e->upstreams[1].username, "alice");  // the SOCKS4 user id
  EXPECT_EQ(e->upstreams[1].password, "");
}

TEST(ConfigEgress, UserSecretAuthUsesTheUsersUpstreamPassword) {
  const Config c = parse(std::string(kHead) +
                         user("bob", "upstreams = [\"vault\"]\nupstream_password = \"b0b-pw\"\n"));
  auto e = egress_for(c, "bob");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->upstreams[0].username, "bob");
  EXPECT_EQ(e->upstreams[0].password, "b0b-pw");
}

TEST(ConfigEgress, FixedAndNoAuth) {
  const Config c = parse(std::string(kHead) + user("carol", "upstreams = [\"corp\", \"open\"]\n"));
  auto e = egress_for(c, "carol");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->upstreams[0].username, "svc");
  EXPECT_EQ(e->upstreams[0].password, "svc-pw");
  EXPECT_EQ(e->upstreams[1].username, "");
}

TEST(ConfigEgress, UsersWithoutAListGetTheDefaultsAndEmptyMeansDirect) {
  const Config c = parse(std::string(kHead) + "[egress]\nupstreams = [\"open\"]\n" + user("dave") +
                         user("erin", "upstreams = []\n"));
  EXPECT_EQ(egress_for(c, "dave")->upstreams.size(), 1u);
  EXPECT_TRUE(egress_for(c, "erin")->upstreams.empty());
  EXPECT_EQ(egress_for(c, "made-by-api")->upstreams.size(), 1u);
}

TEST(ConfigEgress, NoEgressAtAllIsDirect) {
  const Config c = parse("[[listener]]\nbind = \"0.0.0.0:443\"\n" + user("alice"));
  auto e = egress_for(c, "alice");
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(e->upstreams.empty());
}

TEST(ConfigEgress, ApiUserCannotUseUserSecretDefault) {
  const Config c = parse(std::string(kHead) + "[egress]\nupstreams = [\"vault\"]\n");
  auto e = egress_for(c, "api-user");
  ASSERT_FALSE(e.has_value());
  EXPECT_THAT(e.error().context, HasSubstr("has none"));
}

TEST(ConfigEgress, AnAssignmentReplacesTheFileOrTheDefault) {
  const Config c = parse(std::string(kHead) + "[egress]\nupstreams = [\"open\"]\n" +
                         user("alice", "upstreams = [\"fair\"]\n"));
  // The file's assignment for a declared user, the default for others.
  EXPECT_EQ(file_assignment(c, "alice").upstreams, std::vector<std::string>{"fair"});
  EXPECT_EQ(file_assignment(c, "api-user").upstreams, std::nullopt);
  EXPECT_EQ(assigned_names(c, {}), std::vector<std::string>{"open"});
  // An API user's own list and password, with the same builder.
  auto e = egress_for(c, "api-user", {std::vector<std::string>{"vault", "fair"}, "s3cret"});
  ASSERT_TRUE(e.has_value()) << e.error().context;
  ASSERT_EQ(e->upstreams.size(), 2u);
  EXPECT_EQ(e->upstreams[0].username, "api-user");
  EXPECT_EQ(e->upstreams[0].password, "s3cret");
  EXPECT_EQ(e->upstreams[1].password, "api-user");
  EXPECT_EQ(e->policy, c.egress.policy);
  EXPECT_TRUE(egress_for(c, "api-user", {std::vector<std::string>{}, ""})->upstreams.empty());
  EXPECT_EQ(egress_for(c, "api-user", {})->upstreams.at(0).name, "open");
  auto unknown = egress_for(c, "api-user", {std::vector<std::string>{"gone"}, ""});
  ASSERT_FALSE(unknown);
  EXPECT_THAT(unknown.error().context, HasSubstr("unknown upstream \"gone\""));
}

TEST(ConfigEgress, CheckAssignmentAppliesTheFilesRulesAndNamesTheField) {
  const Config c = parse(std::string(kHead) + "[[upstream]]\nname = \"out\"\ntype = \"direct\"\n" +
                         "source = \"198.51.100.7\"\n");
  using List = std::vector<std::string>;
  EXPECT_TRUE(check_assignment(c, "u", {}));
  EXPECT_TRUE(check_assignment(c, "u", {List{}, ""}));
  EXPECT_TRUE(check_assignment(c, "u", {List{"fair", "home"}, ""}));
  EXPECT_TRUE(check_assignment(c, "u", {List{"vault"}, "pw"}));
  auto err = [&](UpstreamAssignment a) {
    auto r = check_assignment(c, "u", a);
    EXPECT_FALSE(r);
    return r ? std::string() : r.error().context;
  };
  EXPECT_THAT(err({List{"nope"}, ""}), HasSubstr("upstreams: unknown upstream \"nope\""));
  EXPECT_THAT(err({List{"fair", "fair"}, ""}),
              HasSubstr("upstreams: upstream \"fair\" named twice"));
  EXPECT_THAT(err({List{"out"}, ""}), HasSubstr("upstreams: upstream \"out\" sets a source"));
  EXPECT_THAT(err({List{"vault"}, ""}), HasSubstr("upstream_password: user \"u\" goes through"));
  const std::string long_pw(256, 'x');
  const std::string e = err({List{"vault"}, long_pw});
  EXPECT_THAT(e, HasSubstr("upstream_password: must be 1..255 bytes"));
  EXPECT_EQ(e.find(long_pw), std::string::npos) << "the password is never in a message";
  // Inheriting a user-secret default needs the password too.
  const Config d = parse(std::string(kHead) + "[egress]\nupstreams = [\"vault\"]\n");
  EXPECT_THAT(err_of_default(d), HasSubstr("upstream_password"));
}

TEST(ConfigEgress, RejectsBadUpstreamsWithPositions) {
  const std::string l = "[[listener]]\nbind = \"0.0.0.0:443\"\n";
  EXPECT_THAT(error_of(l + "[[upstream]]\nname = \"a\"\ntype = \"http\"\n"),
              HasSubstr("t.toml:5:8: upstream \"a\": type must be direct, socks4 or socks5"));
  EXPECT_THAT(error_of(l + "[[upstream]]\nname = \"a\"\ntype = \"socks5\"\n"),
              HasSubstr("t.toml:3:1: upstream \"a\" needs address"));
  EXPECT_THAT(error_of(l + "[[upstream]]\nname = \"a\"\ntype = \"socks5\"\n"
                           "address = \"proxy.example:1080\"\n"),
              HasSubstr("t.toml:6:11: upstream \"a\": address must be an IP address and port"));
  EXPECT_THAT(
      error_of(l + "[[upstream]]\nname = \"a\"\ntype = \"direct\"\naddress = \"1.2.3.4:1\"\n"),
      HasSubstr("a direct upstream has no address"));
  EXPECT_THAT(error_of(l + "[[upstream]]\nname = \"a\"\ntype = \"direct\"\nweight = 0\n"),
              HasSubstr("weight"));
  EXPECT_THAT(error_of(l + "[[upstream]]\nname = \"a\"\ntype = \"socks5\"\n"
                           "address = \"1.2.3.4:1\"\nauth = \"fixed\"\nusername = \"u\"\n"),
              HasSubstr("auth = \"fixed\" on socks5 needs password"));
  EXPECT_THAT(error_of(l + "[[upstream]]\nname = \"a\"\ntype = \"socks4\"\n"
                           "address = \"1.2.3.4:1\"\nauth = \"user-secret\"\n"),
              HasSubstr("auth = \"user-secret\" needs type = \"socks5\""));
  EXPECT_THAT(error_of(l + "[[upstream]]\nname = \"a\"\ntype = \"socks5\"\n"
                           "address = \"1.2.3.4:1\"\nusername = \"u\"\n"),
              HasSubstr("username is only used with auth = \"fixed\""));
  EXPECT_THAT(error_of(l + "[[upstream]]\nname = \"a\"\ntype = \"socks5\"\n"
                           "address = \"1.2.3.4:1\"\nauth = \"kerberos\"\n"),
              HasSubstr("auth must be none, fixed, user-name or user-secret"));
  EXPECT_THAT(error_of(l + "[[upstream]]\nname = \"a\"\ntype = \"direct\"\ncolour = 1\n"),
              HasSubstr("colour"));
  EXPECT_THAT(error_of(l + "[[upstream]]\nname = \"a\"\ntype = \"direct\"\n" +
                       "[[upstream]]\nname = \"a\"\ntype = \"direct\"\n"),
              HasSubstr("t.toml:6:1: upstream \"a\" is declared twice"));
}

TEST(ConfigEgress, RejectsUnknownOrRepeatedNamesAndMissingUserSecret) {
  EXPECT_THAT(error_of(std::string(kHead) + user("alice", "upstreams = [\"nope\"]\n")),
              HasSubstr("user \"alice\" upstreams names unknown upstream \"nope\""));
  EXPECT_THAT(error_of(std::string(kHead) + user("alice", "upstreams = [\"fair\", \"fair\"]\n")),
              HasSubstr("names upstream \"fair\" twice"));
  EXPECT_THAT(error_of(std::string(kHead) + "[egress]\nupstreams = [\"gone\"]\n"),
              HasSubstr("[egress] upstreams names unknown upstream \"gone\""));
  EXPECT_THAT(error_of(std::string(kHead) + user("bob", "upstreams = [\"vault\"]\n")),
              HasSubstr("user \"bob\" goes through upstream \"vault\" (auth = \"user-secret\") and "
                        "needs upstream_password"));
  EXPECT_THAT(error_of(std::string(kHead) + "[egress]\nall_down = \"maybe\"\n"),
              HasSubstr("egress.all_down must be \"fail\" or \"direct\""));
  EXPECT_THAT(error_of(std::string(kHead) + "[egress]\nretry_min_ms = 9000\nretry_max_ms = 500\n"),
              HasSubstr("retry_min_ms is larger"));
  EXPECT_THAT(error_of(std::string(kHead) + "[egress]\nhealth_dc = 0\n"),
              HasSubstr("health_dc must be a DC number"));
}

TEST(ConfigEgress, ErrorsNeverShowPasswords) {
  const std::string e =
      error_of(std::string(kHead) +
               user("bob", "upstreams = [\"nope\"]\nupstream_password = \"zz-secret\"\n"));
  EXPECT_THAT(e, HasSubstr("unknown upstream"));
  EXPECT_EQ(e.find("zz-secret"), std::string::npos);
  EXPECT_EQ(e.find("svc-pw"), std::string::npos);
}

constexpr std::string_view kSources =
    "[[listener]]\nbind = \"0.0.0.0:443\"\n"
    "[[upstream]]\nname = \"pub1\"\ntype = \"direct\"\nsource = \"198.51.100.7\"\n"
    "[[upstream]]\nname = \"pub2\"\ntype = \"direct\"\n"
    "source = [\"198.51.100.8\", \"2001:db8::8\"]\n"
    "[[upstream]]\nname = \"nic\"\ntype = \"direct\"\ninterface = \"eth1\"\n"
    "[[upstream]]\nname = \"fair\"\ntype = \"socks5\"\naddress = \"198.18.0.2:1080\"\n";

TEST(ConfigEgress, DirectUpstreamsCarryASourceAddressOrInterface) {
  const Config c =
      parse(std::string(kSources) + "[egress]\nupstreams = [\"pub1\"]\n" + user("alice") +
            user("bob", "upstreams = [\"pub2\", \"fair\"]\n") +
            user("carol", "upstreams = [\"nic\"]\n") + user("dave", "upstreams = [\"fair\"]\n"));
  EXPECT_EQ(egress_source(c, "alice"), (EgressSource{"198.51.100.7", "", ""}));
  EXPECT_EQ(egress_source(c, "bob"), (EgressSource{"198.51.100.8", "2001:db8::8", ""}));
  EXPECT_EQ(egress_source(c, "carol"), (EgressSource{"", "", "eth1"}));
  EXPECT_EQ(egress_source(c, "dave"), std::nullopt);
  EXPECT_EQ(egress_source(c, "made-by-api"), (EgressSource{"198.51.100.7", "", ""}));
  // The worker sees a plain direct upstream: the source is the cell's NAT.
  auto e = egress_for(c, "bob");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->upstreams[0].type, proto::UpstreamType::kDirect);
  EXPECT_EQ(proto::format_egress(*e).find("198.51.100.8"), std::string::npos);
}

TEST(ConfigEgress, RejectsBadSourcesWithPositions) {
  const std::string head = "[[listener]]\nbind = \"0.0.0.0:443\"\n[[upstream]]\nname = \"a\"\n";
  EXPECT_THAT(
      error_of(head + "type = \"direct\"\nsource = \"pub.example\"\n"),
      HasSubstr("t.toml:6:10: upstream \"a\": source \"pub.example\" is not an IP address"));
  EXPECT_THAT(error_of(head + "type = \"direct\"\nsource = [\"192.0.2.1\", \"192.0.2.2\"]\n"),
              HasSubstr("t.toml:6:24: upstream \"a\": source names two IPv4 addresses"));
  EXPECT_THAT(
      error_of(head + "type = \"socks5\"\naddress = \"192.0.2.9:1080\"\nsource = \"192.0.2.1\"\n"),
      HasSubstr("t.toml:7:10: upstream \"a\": source is only for type = \"direct\""));
  EXPECT_THAT(
      error_of(head + "type = \"direct\"\ninterface = \"bad/name\"\n"),
      HasSubstr("t.toml:6:13: upstream \"a\": interface \"bad/name\" is not an interface name"));
  EXPECT_THAT(error_of(head + "type = \"direct\"\nsource = \"192.0.2.1\"\ninterface = \"eth1\"\n"),
              HasSubstr("give source or interface, not both"));
  EXPECT_THAT(error_of(std::string(kSources) + user("bob", "upstreams = [\"pub1\", \"pub2\"]\n")),
              HasSubstr("user \"bob\" upstreams names direct upstreams \"pub1\" and \"pub2\" with "
                        "different sources"));
  EXPECT_THAT(error_of(std::string(kSources) + "[egress]\nupstreams = [\"nic\", \"pub1\"]\n"),
              HasSubstr("[egress] upstreams names direct upstreams \"nic\" and \"pub1\""));
}

}  // namespace
}  // namespace mtw::supervisor
