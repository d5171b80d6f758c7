// The pure request -> response function, without sockets.
#include "api/handler.h"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "api/json_in.h"
#include "api/json_out.h"
#include "fake_service.h"

namespace mtw::api::detail {
namespace {

namespace json = boost::json;

class HandlerTest : public ::testing::Test {
 protected:
  HttpResponse run(std::string method, std::string target, std::string body = "",
                   Transport t = Transport::kUnix) {
    return handler_.handle(HttpRequest{std::move(method), std::move(target),
                                       body.empty() ? "" : "application/json", "", std::move(body),
                                       t});
  }
  testing::FakeService svc_;
  TokenState token_{"/nonexistent/token", ""};
  Handler handler_{svc_, 86'400, token_};
};

TEST_F(HandlerTest, ParsesRateAndSizeTextsIntoThePatch) {
  auto o = parse_object(
      R"({"limits":{"rate_up":"2MB/s","rate_down":"unlimited","quota":"1.5GiB","throttle_rate":64000,"max_unique_ips":null}})",
      false);
  ASSERT_TRUE(o);
  auto p = parse_user_patch(*o);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(**p->rate_up_bps, 16'000'000u);
  EXPECT_EQ(**p->rate_down_bps, 0u);  // unlimited
  EXPECT_EQ(**p->quota_bytes, 1'610'612'736u);
  EXPECT_EQ(**p->throttle_bps, 64'000u);
  ASSERT_TRUE(p->max_unique_ips.has_value());
  EXPECT_FALSE(p->max_unique_ips->has_value());  // null = inherit again
  EXPECT_FALSE(p->period.has_value());           // absent = keep
}

TEST_F(HandlerTest, BandwidthWeightIsAnIntegerInItsRangeAndNullInherits) {
  auto set = parse_user_patch(*parse_object(R"({"limits":{"bandwidth_weight":1000}})", false));
  ASSERT_TRUE(set) << set.error().message;
  ASSERT_TRUE(set->bandwidth_weight && *set->bandwidth_weight);
  EXPECT_EQ(**set->bandwidth_weight, 1'000u);
  auto inherit = parse_user_patch(*parse_object(R"({"limits":{"bandwidth_weight":null}})", false));
  ASSERT_TRUE(inherit && inherit->bandwidth_weight);
  EXPECT_FALSE(inherit->bandwidth_weight->has_value());
  for (const char* bad :
       {R"({"limits":{"bandwidth_weight":0}})", R"({"limits":{"bandwidth_weight":1001}})",
        R"({"limits":{"bandwidth_weight":"3"}})", R"({"limits":{"bandwidth_weight":2.5}})",
        R"({"limits":{"bandwidth_weight":-1}})"}) {
    auto p = parse_user_patch(*parse_object(bad, false));
    ASSERT_FALSE(p) << bad;
    EXPECT_EQ(p.error().field, "limits.bandwidth_weight") << bad;
  }
}

TEST_F(HandlerTest, AdTagIsCanonicalAndNullOrEmptyRemovesIt) {
  auto set =
      parse_user_patch(*parse_object(R"({"ad_tag":"0123456789ABCDEF0123456789abcdef"})", false));
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ(*set->ad_tag, "0123456789abcdef0123456789abcdef");
  for (const char* none : {R"({"ad_tag":null})", R"({"ad_tag":""})"}) {
    auto p = parse_user_patch(*parse_object(none, false));
    ASSERT_TRUE(p) << none;
    ASSERT_TRUE(p->ad_tag.has_value()) << none;
    EXPECT_EQ(*p->ad_tag, "") << none;
  }
  for (const char* bad : {R"({"ad_tag":"0123"})", R"({"ad_tag":42})",
                          R"({"ad_tag":"0123456789abcdef0123456789abcdeg"})"}) {
    auto p = parse_user_patch(*parse_object(bad, false));
    ASSERT_FALSE(p) << bad;
    EXPECT_EQ(p.error().field, "ad_tag") << bad;
  }
  auto absent = parse_user_patch(*parse_object(R"({"comment":"x"})", false));
  ASSERT_TRUE(absent);
  EXPECT_FALSE(absent->ad_tag.has_value());
}

TEST_F(HandlerTest, UpstreamsAreNamesNullInheritsEmptyIsDirect) {
  auto set = parse_user_patch(*parse_object(R"({"upstreams":["dante","b.2"]})", false));
  ASSERT_TRUE(set) << set.error().message;
  ASSERT_TRUE(set->upstreams && *set->upstreams);
  EXPECT_EQ(**set->upstreams, (std::vector<std::string>{"dante", "b.2"}));
  auto inherit = parse_user_patch(*parse_object(R"({"upstreams":null})", false));
  ASSERT_TRUE(inherit && inherit->upstreams);
  EXPECT_FALSE(inherit->upstreams->has_value());
  auto direct = parse_user_patch(*parse_object(R"({"upstreams":[]})", false));
  ASSERT_TRUE(direct && direct->upstreams && *direct->upstreams);
  EXPECT_TRUE((*direct->upstreams)->empty());
  auto absent = parse_user_patch(*parse_object(R"({"comment":"x"})", false));
  ASSERT_TRUE(absent);
  EXPECT_FALSE(absent->upstreams.has_value());
  EXPECT_FALSE(absent->upstream_password.has_value());
  std::string many = R"({"upstreams":[)";
  for (int i = 0; i < 65; ++i) many += std::string(i ? "," : "") + "\"u" + std::to_string(i) + "\"";
  many += "]}";
  for (const char* bad : {R"({"upstreams":"dante"})", R"({"upstreams":[1]})",
                          R"({"upstreams":["bad name"]})", R"({"upstreams":[""]})", many.c_str()}) {
    auto p = parse_user_patch(*parse_object(bad, false));
    ASSERT_FALSE(p) << bad;
    EXPECT_EQ(p.error().field.substr(0, 9), "upstreams") << bad;
  }
}

TEST_F(HandlerTest, UpstreamPasswordIsNeverEchoed) {
  auto p = parse_user_patch(*parse_object(R"({"upstream_password":"pw"})", false));
  ASSERT_TRUE(p && p->upstream_password);
  EXPECT_EQ(*p->upstream_password, "pw");
  auto none = parse_user_patch(*parse_object(R"({"upstream_password":null})", false));
  ASSERT_TRUE(none && none->upstream_password);
  EXPECT_EQ(*none->upstream_password, "");
  const std::string long_pw(256, 'q');
  auto bad = parse_user_patch(*parse_object(R"({"upstream_password":")" + long_pw + "\"}", false));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().field, "upstream_password");
  EXPECT_EQ(bad.error().message.find(long_pw), std::string::npos);
  auto u = parse_new_user(
      *parse_object(R"({"name":"n","upstreams":["a"],"upstream_password":"pw"})", false));
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u->upstreams, std::vector<std::string>{"a"});
  EXPECT_EQ(u->upstream_password, "pw");
  EXPECT_FALSE(u->limits.upstreams.has_value());
  auto plain = parse_new_user(*parse_object(R"({"name":"n"})", false));
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->upstreams, std::nullopt);
}

TEST_F(HandlerTest, TheUserShowsItsUpstreamsButNeverThePassword) {
  UserRecord r;
  r.user.name = "ann";
  r.user.upstreams = std::vector<std::string>{"dante"};
  r.user.upstream_password = "hunter2-pw";
  const std::string text = json::serialize(to_json(r, nullptr));
  EXPECT_NE(text.find(R"("upstreams":["dante"])"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("upstream_password_set":true)"), std::string::npos) << text;
  EXPECT_EQ(text.find("hunter2-pw"), std::string::npos) << text;
  r.user.upstreams.reset();
  r.user.upstream_password.clear();
  const std::string inherit = json::serialize(to_json(r, nullptr));
  EXPECT_NE(inherit.find(R"("upstreams":null)"), std::string::npos) << inherit;
  EXPECT_NE(inherit.find(R"("upstream_password_set":false)"), std::string::npos) << inherit;
  UserStatus s;
  s.upstream_names = {"a", "b"};
  s.upstreams_inherited = false;
  const std::string st = json::serialize(to_json(s));
  EXPECT_NE(st.find(R"("upstream_names":["a","b"],"upstreams_inherited":false)"), std::string::npos)
      << st;
}

TEST_F(HandlerTest, ExpiryDateMeansThroughThatDay) {
  auto p = parse_user_patch(*parse_object(R"({"expires_at":"2024-02-29"})", false));
  ASSERT_TRUE(p);
  EXPECT_EQ(**p->expires_at, 1'709'251'200);  // 2024-03-01T00:00:00Z
}

TEST_F(HandlerTest, MapsServiceErrorsToStatusAndField) {
  svc_.next_error = base::Error{base::Errc::kBadInput, 0, "limits.anchor_day: weekly needs 1..7"};
  HttpResponse r = run("PATCH", "/v1/users/cfguser", R"({"limits":{"anchor_day":9}})");
  EXPECT_EQ(r.status, 400);
  auto e = json::parse(r.body).at("error");
  EXPECT_EQ(e.at("field"), "limits.anchor_day");
  EXPECT_EQ(e.at("message"), "limits.anchor_day: weekly needs 1..7");
  svc_.next_error = base::Error{base::Errc::kBadInput, 0, "weekly anchor: bad, really"};
  r = run("PATCH", "/v1/users/cfguser", "{}");
  EXPECT_FALSE(json::parse(r.body).at("error").as_object().contains("field"));
  svc_.next_error = base::Error{base::Errc::kExhausted, 0, "no room for another user in [cells]"};
  r = run("PATCH", "/v1/users/cfguser", "{}");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(json::parse(r.body).at("error").at("code"), "conflict");
  EXPECT_EQ(json::parse(r.body).at("error").at("message"), "no room for another user in [cells]");
  svc_.next_error = base::Error{base::Errc::kSyscall, 5, "disk"};
  r = run("PATCH", "/v1/users/cfguser", "{}");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(json::parse(r.body).at("error").at("message"), "internal error");  // no internals leak
}

TEST_F(HandlerTest, NoRoomForAUserIsAConflict) {
  svc_.room = 1;  // cfguser fills it
  const std::string before = svc_.dump();
  HttpResponse r = run("POST", "/v1/users", R"({"name":"ann"})");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(json::parse(r.body).at("error").at("code"), "conflict");
  EXPECT_EQ(json::parse(r.body).at("error").at("message"), "no room for another user");
  EXPECT_EQ(svc_.dump(), before);
}

TEST_F(HandlerTest, MethodNotAllowedListsAllowedMethods) {
  HttpResponse r = run("PUT", "/v1/users/cfguser");
  EXPECT_EQ(r.status, 405);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "Allow");
  EXPECT_EQ(r.headers[0].second, "GET, PATCH, DELETE");
}

TEST_F(HandlerTest, TcpWithoutTokenFileRefusesEveryRequest) {
  HttpResponse r = run("GET", "/v1/status", "", Transport::kTcp);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(run("GET", "/v1/status").status, 200);
}

TEST_F(HandlerTest, MaskProfilesShowSourceAgeAndValues) {
  HttpResponse r = run("GET", "/v1/mask-profiles");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"probing\":true"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"source\":\"stored\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"age_s\":100"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"cipher\":\"1302\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"flight\":[[36,36],[900,910]]"), std::string::npos) << r.body;
  EXPECT_EQ(run("POST", "/v1/mask-profiles").status, 405);
}

TEST_F(HandlerTest, UpstreamsListEachWithItsUsersAndWorkersHealth) {
  HttpResponse r = run("GET", "/v1/upstreams");
  ASSERT_EQ(r.status, 200) << r.body;
  auto v = boost::json::parse(r.body);
  const auto& ups = v.at("upstreams").as_array();
  ASSERT_EQ(ups.size(), 1u);
  EXPECT_EQ(ups[0].at("name"), "dante");
  EXPECT_EQ(ups[0].at("address"), "198.18.0.2:1080");
  EXPECT_EQ(ups[0].at("weight"), 3);
  EXPECT_EQ(ups[0].at("users"), 2);
  EXPECT_EQ(ups[0].at("workers_down"), 1);
  EXPECT_EQ(ups[0].at("connects"), 40);
  EXPECT_EQ(run("POST", "/v1/upstreams").status, 405);
  HttpResponse m = run("GET", "/metrics");
  EXPECT_NE(m.body.find("mtwarden_upstream_workers{upstream=\"dante\",state=\"down\"} 1"),
            std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("mtwarden_upstream_users{upstream=\"dante\"} 2"), std::string::npos);
}

TEST_F(HandlerTest, FleetListsTheStoresHostsWithTheirLastSweep) {
  HttpResponse r = run("GET", "/v1/fleet");
  ASSERT_EQ(r.status, 200) << r.body;
  auto v = boost::json::parse(r.body);
  EXPECT_EQ(v.at("backend"), "postgresql");
  EXPECT_EQ(v.at("this_host"), "edge-1");
  EXPECT_EQ(v.at("last_error"), "");
  const auto& hosts = v.at("hosts").as_array();
  ASSERT_EQ(hosts.size(), 2u);
  EXPECT_EQ(hosts[0].at("name"), "edge-1");
  EXPECT_EQ(hosts[0].at("this_host"), true);
  EXPECT_EQ(hosts[0].at("last_sweep_age_s"), 1);
  EXPECT_EQ(hosts[0].at("last_sweep_seq"), 40);
  EXPECT_EQ(hosts[1].at("this_host"), false);
  EXPECT_TRUE(hosts[1].at("last_sweep_at").is_null());  // not swept yet
  EXPECT_TRUE(hosts[1].at("last_sweep_age_s").is_null());
  EXPECT_EQ(run("POST", "/v1/fleet").status, 405);
  // /metrics: one sample per host that has swept.
  HttpResponse m = run("GET", "/metrics");
  EXPECT_NE(m.body.find("mtwarden_fleet_host_last_sweep_timestamp_seconds{host=\"edge-1\"}"),
            std::string::npos);
  EXPECT_EQ(m.body.find("host=\"edge-2\""), std::string::npos);
}

TEST_F(HandlerTest, TokenRotateReportsAnUnwritableFile) {
  HttpResponse r = run("POST", "/v1/token/rotate");
  EXPECT_EQ(r.status, 500);
  EXPECT_TRUE(token_.hash_hex.empty());  // the old state stays
}

TEST_F(HandlerTest, UsageDefaultsToTheLastThirtyDays) {
  HttpResponse r = run("GET", "/v1/users/cfguser/usage");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(svc_.last_to - svc_.last_from, 30 * 86'400);
  r = run("GET", "/v1/users/cfguser/usage?by=month");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body).at("items").as_array().size(), 12u);
}

TEST_F(HandlerTest, QueryValuesArePercentDecoded) {
  EXPECT_EQ(run("GET", "/v1/users/cfguser/usage?from=2026%2D01%2D01&to=2026-01-02").status, 200);
  EXPECT_EQ(run("GET", "/v1/users/cfguser/usage?from=%zz").status, 400);
}

TEST(TargetPath, DropsTheQuery) {
  EXPECT_EQ(target_path("/v1/events?after=3"), "/v1/events");
  EXPECT_EQ(target_path("/metrics"), "/metrics");
}

TEST_F(HandlerTest, AUserNamedByAnEarlierRuleCanStillBeShownAndDeleted) {
  // Stored before names could not start with '.' or '-' (the service takes it as given).
  NewUser old;
  old.name = "-old";
  ASSERT_TRUE(svc_.create_user(old));
  EXPECT_EQ(run("GET", "/v1/users/-old").status, 200);
  EXPECT_EQ(run("DELETE", "/v1/users/-old").status, 204);
  // A new one may not be called so.
  EXPECT_EQ(run("POST", "/v1/users", R"({"name":"-new"})").status, 400);
  EXPECT_EQ(run("GET", "/v1/users/a%20b").status, 404);
}

}  // namespace
}  // namespace mtw::api::detail
