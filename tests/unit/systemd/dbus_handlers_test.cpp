// The D-Bus method layer without a bus: decoded arguments -> Service calls
// -> replies or named errors (the binding itself is tested end to end by
// tests/integration/test_dbus.py).
#include "systemd/dbus_handlers.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "../api/fake_service.h"
#include "api/json_out.h"

namespace mtw::systemd {
namespace {

using api::testing::FakeService;

class DbusHandlersTest : public ::testing::Test {
 protected:
  // A user with defaults only, for the tests that change it.
  void add_ann() {
    auto r = h_.add_user("ann", {});
    ASSERT_TRUE(r) << r.error().message;
  }
  // A call that must fail with `name`, naming `needle`, and change nothing.
  template <class F>
  void expect_refused(F&& call, const char* name, const std::string& needle) {
    const std::string before = svc_.dump();
    auto r = call();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().name, name) << r.error().message;
    EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find("limits."), std::string::npos) << r.error().message;
    EXPECT_EQ(svc_.dump(), before);
  }
  FakeService svc_;
  DbusHandlers h_{svc_};
};

TEST_F(DbusHandlersTest, AddUserTakesEveryOptionWithAnyIntegerWidth) {
  VariantMap opts;
  opts["secrets"] = sdbus::Variant(std::vector<std::string>{"0123456789abcdef0123456789abcdef"});
  opts["comment"] = sdbus::Variant(std::string("bob's phone"));
  opts["enabled"] = sdbus::Variant(false);
  opts["expires_at"] = sdbus::Variant(std::string("2030-01-01"));
  opts["rate_up"] = sdbus::Variant(std::uint32_t{2'000'000});  // u
  opts["rate_down"] = sdbus::Variant(std::string("20mbit"));
  opts["quota"] = sdbus::Variant(std::string("1GiB"));
  opts["period"] = sdbus::Variant(std::string("weekly"));
  opts["anchor_day"] = sdbus::Variant(std::uint8_t{3});        // y
  opts["warn_percent"] = sdbus::Variant(std::int16_t{70});     // n
  opts["max_connections"] = sdbus::Variant(std::int64_t{50});  // x
  opts["on_demand"] = sdbus::Variant(true);
  auto r = h_.add_user("bob", opts);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->at("name").get<std::string>(), "bob");
  EXPECT_FALSE(r->at("enabled").get<bool>());
  EXPECT_EQ(r->at("expires_at").get<std::int64_t>(), 1'893'542'400);  // end of 2030-01-01
  EXPECT_EQ(r->at("comment").get<std::string>(), "bob's phone");
  const auto secrets = r->at("secrets").get<std::vector<VariantMap>>();
  ASSERT_EQ(secrets.size(), 1u);
  EXPECT_EQ(secrets[0].at("secret").get<std::string>(), "0123456789abcdef0123456789abcdef");
  EXPECT_FALSE(secrets[0].count("expires_at"));  // null = left out
  const auto limits = r->at("limits").get<VariantMap>();
  EXPECT_EQ(limits.at("rate_up_bps").peekValueType(), "t");
  EXPECT_EQ(limits.at("rate_up_bps").get<std::uint64_t>(), 2'000'000u);
  EXPECT_EQ(limits.at("rate_down_bps").get<std::uint64_t>(), 20'000'000u);
  EXPECT_EQ(limits.at("quota_bytes").get<std::uint64_t>(), 1ull << 30);
  EXPECT_EQ(limits.at("period").get<std::string>(), "weekly");
  const auto overrides = r->at("overrides").get<VariantMap>();
  EXPECT_EQ(overrides.size(), 8u);
  EXPECT_EQ(r->at("status").get<VariantMap>().at("state").get<std::string>(), "disabled");

  auto rows = h_.list_users();
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 2u);  // bob, cfguser
  EXPECT_EQ(std::get<0>((*rows)[0]), "bob");
  EXPECT_FALSE(std::get<1>((*rows)[0]));
  EXPECT_EQ(std::get<2>((*rows)[0]), "disabled");
  EXPECT_EQ(std::get<2>((*rows)[1]), "running");
}

TEST_F(DbusHandlersTest, AddUserRefusalsNameTheFieldAndChangeNothing) {
  add_ann();
  auto add = [&](std::string name, VariantMap o) {
    return [this, name, o] { return h_.add_user(name, o); };
  };
  expect_refused(add("ann", {}), kErrUserExists, "ann");
  svc_.room = 2;  // cfguser and ann
  expect_refused(add("bea", {}), kErrNoRoom, "no room");
  svc_.room = 1000;
  expect_refused(add("bad name", {}), kErrInvalidArgument, "name");
  expect_refused(add("", {}), kErrInvalidArgument, "name");
  expect_refused(add("x", {{"frobnicate", sdbus::Variant(true)}}), kErrInvalidArgument,
                 "frobnicate");
  expect_refused(add("x", {{"name", sdbus::Variant(std::string("y"))}}), kErrInvalidArgument,
                 "name");
  expect_refused(add("x", {{"limits", sdbus::Variant(std::string("y"))}}), kErrInvalidArgument,
                 "limits");
  expect_refused(add("x", {{"anchor_day", sdbus::Variant(3.0)}}), kErrInvalidArgument,
                 "anchor_day");
  expect_refused(add("x", {{"anchor_day", sdbus::Variant(std::int32_t{32})}}), kErrInvalidArgument,
                 "anchor_day must be in 1..31");
  expect_refused(add("x", {{"rate_up", sdbus::Variant(std::uint64_t{100})}}), kErrInvalidArgument,
                 "rate_up must be at least");
  expect_refused(add("x", {{"rate_up", sdbus::Variant(std::uint64_t{UINT64_MAX})}}),
                 kErrInvalidArgument, "rate_up");
  expect_refused(add("x", {{"quota", sdbus::Variant(std::int32_t{-5})}}), kErrInvalidArgument,
                 "quota must not be negative");
  expect_refused(add("x", {{"period", sdbus::Variant(std::string("fortnightly"))}}),
                 kErrInvalidArgument, "period");
  expect_refused(add("x", {{"secrets", sdbus::Variant(std::vector<std::string>{"zz"})}}),
                 kErrInvalidArgument, "secrets[0]");
  expect_refused(add("x", {{"comment", sdbus::Variant(std::string(300, 'c'))}}),
                 kErrInvalidArgument, "comment");
  expect_refused(add("x", {{"enabled", sdbus::Variant(std::uint32_t{1})}}), kErrInvalidArgument,
                 "enabled must be a boolean");
  // D-Bus types with no meaning here: a nested dictionary, an object path.
  expect_refused(add("x", {{"quota", sdbus::Variant(VariantMap{})}}), kErrInvalidArgument,
                 "quota has D-Bus type a{sv}");
  expect_refused(add("x", {{"comment", sdbus::Variant(sdbus::ObjectPath("/a"))}}),
                 kErrInvalidArgument, "comment has D-Bus type o");
}

TEST_F(DbusHandlersTest, SetLimitsChangesAndRevertsToDefaults) {
  add_ann();
  auto r = h_.set_limits("ann", {{"quota", sdbus::Variant(std::uint64_t{5'000'000})},
                                 {"max_unique_ips", sdbus::Variant(std::uint16_t{4})},
                                 {"expires_at", sdbus::Variant(std::int64_t{2'000'000'000})}});
  ASSERT_TRUE(r) << r.error().message;
  auto u = h_.get_user("ann");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->at("overrides").get<VariantMap>().at("quota_bytes").get<std::uint64_t>(),
            5'000'000u);
  EXPECT_EQ(u->at("limits").get<VariantMap>().at("max_unique_ips").get<std::uint64_t>(), 4u);
  EXPECT_EQ(u->at("expires_at").get<std::int64_t>(), 2'000'000'000);

  r = h_.set_limits("ann", {{"quota", sdbus::Variant(std::string("default"))},
                            {"expires_at", sdbus::Variant(std::string("never"))}});
  ASSERT_TRUE(r) << r.error().message;
  u = h_.get_user("ann");
  const auto overrides = u->at("overrides").get<VariantMap>();
  EXPECT_FALSE(overrides.count("quota_bytes"));
  EXPECT_TRUE(overrides.count("max_unique_ips"));
  EXPECT_FALSE(u->count("expires_at"));
  EXPECT_TRUE(h_.set_limits("ann", {}));  // nothing to change is not an error
}

TEST_F(DbusHandlersTest, SetLimitsTakesABandwidthWeightAndDefaultInherits) {
  add_ann();
  auto r = h_.set_limits("ann", {{"bandwidth_weight", sdbus::Variant(std::uint32_t{3})}});
  ASSERT_TRUE(r) << r.error().message;
  auto u = h_.get_user("ann");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->at("overrides").get<VariantMap>().at("bandwidth_weight").get<std::uint64_t>(), 3u);
  EXPECT_EQ(u->at("limits").get<VariantMap>().at("bandwidth_weight").get<std::uint64_t>(), 3u);
  ASSERT_TRUE(h_.set_limits("ann", {{"bandwidth_weight", sdbus::Variant(std::string("default"))}}));
  u = h_.get_user("ann");
  EXPECT_FALSE(u->at("overrides").get<VariantMap>().count("bandwidth_weight"));
  EXPECT_EQ(u->at("limits").get<VariantMap>().at("bandwidth_weight").get<std::uint64_t>(), 1u);
  expect_refused(
      [&] {
        return h_.set_limits("ann", {{"bandwidth_weight", sdbus::Variant(std::uint32_t{1001})}});
      },
      kErrInvalidArgument, "bandwidth_weight");
}

TEST_F(DbusHandlersTest, SetLimitsTakesUpstreamsAsListOrInheritOrDirect) {
  add_ann();
  auto r = h_.set_limits("ann", {{"upstreams", sdbus::Variant(std::vector<std::string>{"a", "b"})},
                                 {"upstream_password", sdbus::Variant(std::string("pw"))}});
  ASSERT_TRUE(r) << r.error().message;
  auto u = h_.get_user("ann");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->at("upstreams").get<std::vector<std::string>>(),
            (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(u->at("upstream_password_set").get<bool>());
  EXPECT_FALSE(u->count("upstream_password"));
  ASSERT_TRUE(h_.set_limits("ann", {{"upstreams", sdbus::Variant(std::string("direct"))}}));
  EXPECT_TRUE(h_.get_user("ann")->at("upstreams").get<std::vector<std::string>>().empty());
  ASSERT_TRUE(h_.set_limits("ann", {{"upstreams", sdbus::Variant(std::string("inherit"))}}));
  EXPECT_FALSE(h_.get_user("ann")->count("upstreams"));  // null: left out
  expect_refused(
      [&] {
        return h_.set_limits("ann", {{"upstreams", sdbus::Variant(std::string("x"))}});
      },
      kErrInvalidArgument, "upstreams");
}

TEST_F(DbusHandlersTest, SetLimitsRefusals) {
  add_ann();
  auto set = [&](std::string name, VariantMap o) {
    return [this, name, o] { return h_.set_limits(name, o); };
  };
  const VariantMap quota{{"quota", sdbus::Variant(std::uint64_t{1'000'000})}};
  expect_refused(set("nobody", quota), kErrNoSuchUser, "nobody");
  expect_refused(set("../etc", quota), kErrNoSuchUser, "../etc");
  expect_refused(set("cfguser", quota), kErrDeclaredInConfig, "configuration file");
  expect_refused(set("ann", {{"comment", sdbus::Variant(std::string("c"))}}), kErrInvalidArgument,
                 "unknown option comment");
  expect_refused(set("ann", {{"enabled", sdbus::Variant(false)}}), kErrInvalidArgument, "enabled");
  expect_refused(set("ann", {{"warn_percent", sdbus::Variant(std::int32_t{100})}}),
                 kErrInvalidArgument, "warn_percent must be in 1..99");
  // One bad key among good ones: none of them is applied.
  expect_refused(set("ann", {{"quota", sdbus::Variant(std::uint64_t{1'000'000})},
                             {"period", sdbus::Variant(std::string("weekly"))},
                             {"anchor_day", sdbus::Variant(std::int32_t{9})}}),
                 kErrInvalidArgument, "anchor_day");
  expect_refused(set("ann", {{"expires_at", sdbus::Variant(std::string("tomorrow"))}}),
                 kErrInvalidArgument, "expires_at");
  expect_refused(set("ann", {{"expires_at", sdbus::Variant(std::string("default"))}}),
                 kErrInvalidArgument, "expires_at");
  svc_.next_error = base::Error{base::Errc::kInternal, 0, "disk full"};
  auto r = h_.set_limits("ann", quota);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().name, kErrFailed);
  EXPECT_EQ(r.error().message, "internal error");  // details stay in the log
}

TEST_F(DbusHandlersTest, EnableDisableRemove) {
  add_ann();
  ASSERT_TRUE(h_.set_enabled("ann", false));
  EXPECT_FALSE(h_.get_user("ann")->at("enabled").get<bool>());
  ASSERT_TRUE(h_.set_enabled("ann", true));
  EXPECT_TRUE(h_.get_user("ann")->at("enabled").get<bool>());
  expect_refused([&] { return h_.set_enabled("nobody", true); }, kErrNoSuchUser, "nobody");
  expect_refused([&] { return h_.set_enabled("cfguser", false); }, kErrDeclaredInConfig, "cfguser");
  expect_refused([&] { return h_.remove_user("cfguser"); }, kErrDeclaredInConfig, "configuration");
  expect_refused([&] { return h_.remove_user("a/b"); }, kErrNoSuchUser, "a/b");
  ASSERT_TRUE(h_.remove_user("ann"));
  expect_refused([&] { return h_.remove_user("ann"); }, kErrNoSuchUser, "ann");
  expect_refused([&] { return h_.get_user("ann"); }, kErrNoSuchUser, "ann");
  expect_refused([&] { return h_.get_status("ann"); }, kErrNoSuchUser, "ann");
}

TEST_F(DbusHandlersTest, StatusIsTheHttpApisStatusAsVariants) {
  auto s = h_.get_status("cfguser");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->at("name").get<std::string>(), "cfguser");
  EXPECT_EQ(s->at("state").get<std::string>(), "running");
  EXPECT_EQ(s->at("connections").get<std::uint64_t>(), 2u);
  EXPECT_FALSE(s->count("cell"));  // null
  const auto quota = s->at("quota").get<VariantMap>();
  EXPECT_EQ(quota.at("used_bytes").get<std::uint64_t>(), 1'000u);
  EXPECT_EQ(s->at("worker_counters").peekValueType(), "a{sv}");
}

TEST_F(DbusHandlersTest, UsageByDayAndMonth) {
  auto days = h_.get_usage("cfguser", "day", "2026-09-01", "2026-09-03");
  ASSERT_TRUE(days) << days.error().message;
  ASSERT_EQ(days->size(), 3u);
  EXPECT_EQ(std::get<0>((*days)[0]), "2026-09-01");
  EXPECT_EQ(std::get<1>((*days)[0]), 1'000'000u);
  EXPECT_EQ(std::get<2>((*days)[0]), 2'000'000u);
  EXPECT_EQ(std::get<0>((*days)[2]), "2026-09-03");
  EXPECT_EQ(std::get<1>((*days)[2]), 0u);
  EXPECT_EQ(svc_.last_from, 1'788'220'800);  // 2026-09-01T00:00Z

  auto months = h_.get_usage("cfguser", "month", "2026-08", "2026-09");
  ASSERT_TRUE(months) << months.error().message;
  ASSERT_EQ(months->size(), 2u);
  EXPECT_EQ(std::get<0>((*months)[1]), "2026-09");
  EXPECT_EQ(std::get<1>((*months)[1]), 5u);
  EXPECT_EQ(std::get<2>((*months)[1]), 7u);

  auto dflt = h_.get_usage("cfguser", "day", "", "");
  ASSERT_TRUE(dflt);
  EXPECT_EQ(dflt->size(), 30u);  // the HTTP API's default range

  auto bad = [&](std::string n, std::string by, std::string f, std::string t) {
    return [=, this] { return h_.get_usage(n, by, f, t); };
  };
  expect_refused(bad("nobody", "day", "", ""), kErrNoSuchUser, "nobody");
  expect_refused(bad("cfguser", "week", "", ""), kErrInvalidArgument, "by must be day or month");
  expect_refused(bad("cfguser", "day", "2026-09-05", "2026-09-01"), kErrInvalidArgument, "from");
  expect_refused(bad("cfguser", "day", "2026-13-01", ""), kErrInvalidArgument, "from");
  expect_refused(bad("cfguser", "day", "2026-09-01&by=month", ""), kErrInvalidArgument, "from");
  expect_refused(bad("cfguser", "day", "2000-01-01", "2026-01-01"), kErrInvalidArgument, "3660");
}

TEST_F(DbusHandlersTest, Reload) {
  ASSERT_TRUE(h_.reload());
  EXPECT_EQ(svc_.reloads, 1u);
  svc_.reload_ok = false;
  auto r = h_.reload();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().name, kErrReloadRejected);
  EXPECT_NE(r.error().message.find("bad key"), std::string::npos);
}

TEST_F(DbusHandlersTest, SignalsForEventKinds) {
  auto sig = [&](std::string user, std::string kind, std::string detail) {
    return h_.signal_for(api::LiveEvent{1, 0, std::move(user), std::move(kind), std::move(detail)});
  };
  auto t = sig("ann", "quota_throttled", "used=120 quota=100");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->member, "UserThrottled");
  EXPECT_EQ(t->user, "ann");
  EXPECT_EQ(t->reason, "quota");
  EXPECT_EQ(t->detail, "used=120 quota=100");
  t = sig("ann", "unique_ips_throttled", "5 unique IPs, limit 4");
  EXPECT_EQ(t->member, "UserThrottled");
  EXPECT_EQ(t->reason, "unique_ips");
  t = sig("ann", "quota_unthrottled", "");
  EXPECT_EQ(t->member, "UserUnthrottled");
  EXPECT_EQ(t->reason, "quota");
  EXPECT_EQ(sig("ann", "unique_ips_unthrottled", "")->reason, "unique_ips");
  auto w = sig("ann", "quota_warned", "used=850000 quota=1000000");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->member, "QuotaWarning");
  EXPECT_EQ(w->number, 85u);
  EXPECT_EQ(w->used_bytes, 850'000u);
  EXPECT_EQ(w->quota_bytes, 1'000'000u);
  auto huge = sig("ann", "quota_warned", "used=18446744073709551615 quota=1");
  EXPECT_EQ(huge->number, UINT32_MAX);
  auto down = sig("ann", "upstream_down", "upstream=dante-2 failures=3 marked_down=1");
  ASSERT_TRUE(down);
  EXPECT_EQ(down->member, "UpstreamHealth");
  EXPECT_EQ(down->reason, "dante-2");
  EXPECT_FALSE(down->up);
  EXPECT_EQ(down->detail, "upstream=dante-2 failures=3 marked_down=1");
  auto back = sig("ann", "upstream_up", "upstream=dante-2");
  EXPECT_EQ(back->reason, "dante-2");
  EXPECT_TRUE(back->up);
  auto r = sig("cfguser", "worker_restarted", "");
  EXPECT_EQ(r->member, "WorkerRestarted");
  EXPECT_EQ(r->number, 0u);
  EXPECT_EQ(sig("ann", "user_expired", "")->member, "UserExpired");
  auto u = sig("ann", "usage_reset", "api");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->member, "UsageReset");
  EXPECT_EQ(u->reason, "api");
  EXPECT_EQ(sig("ann", "usage_reset", "period")->reason, "period");
  EXPECT_FALSE(sig("", "reloaded", "users=1"));
  EXPECT_FALSE(sig("ann", "user_created", "api"));
  EXPECT_FALSE(sig("", "quota_throttled", "used=1 quota=1"));
}

TEST_F(DbusHandlersTest, UpstreamsAreTheHttpApis) {
  auto r = h_.upstreams();
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  const VariantMap& u = (*r)[0];
  EXPECT_EQ(u.at("name").get<std::string>(), "dante");
  EXPECT_EQ(u.at("address").get<std::string>(), "198.18.0.2:1080");
  EXPECT_EQ(u.at("workers_down").get<std::uint64_t>(), 1u);
  EXPECT_EQ(u.at("connects").get<std::uint64_t>(), 40u);
}

TEST_F(DbusHandlersTest, MaskProfilesAreTheHttpApisWithTypedFlight) {
  auto r = h_.mask_profiles();
  ASSERT_TRUE(r) << r.error().message;
  const auto& [probing, profiles] = *r;
  EXPECT_TRUE(probing);
  ASSERT_EQ(profiles.size(), 1u);
  const VariantMap& p = profiles[0];
  EXPECT_EQ(p.at("domain").get<std::string>(), "www.example.com");
  EXPECT_EQ(p.at("target").get<std::string>(), "www.example.com:443");
  EXPECT_EQ(p.at("source").get<std::string>(), "stored");
  EXPECT_EQ(p.at("age_s").get<std::int64_t>(), 100);
  EXPECT_EQ(p.at("cipher").get<std::string>(), "1302");
  EXPECT_EQ(p.at("flight").peekValueType(), "a(tt)");
  const auto flight =
      p.at("flight").get<std::vector<sdbus::Struct<std::uint64_t, std::uint64_t>>>();
  ASSERT_EQ(flight.size(), 2u);
  EXPECT_EQ(std::get<0>(flight[1]), 900u);
  EXPECT_EQ(std::get<1>(flight[1]), 910u);
  EXPECT_EQ(p.at("flight_records").get<std::uint64_t>(), 2u);
  EXPECT_EQ(p.at("flight_wire_min").get<std::uint64_t>(), 956u);
  EXPECT_EQ(p.at("latency_ms").get<VariantMap>().at("median").get<std::uint64_t>(), 2u);
  // Every member of GET /v1/mask-profiles is there, none added.
  const auto json = api::detail::to_json(svc_.server_status().mask_profiles);
  const auto& want = json.at("profiles").as_array()[0].as_object();
  EXPECT_EQ(p.size(), want.size());
  for (const auto& kv : want) EXPECT_TRUE(p.count(std::string(kv.key()))) << kv.key();
}

TEST_F(DbusHandlersTest, JsonToVariantsLeavesNullsOutAndKeepsArrayTypes) {
  const auto o =
      boost::json::parse(R"({"a":null,"b":[],"c":["x"],"d":[1,"x"],"e":{"f":-1},"g":1.5})")
          .as_object();
  const VariantMap m = to_variant_map(o);
  EXPECT_FALSE(m.count("a"));
  EXPECT_EQ(m.at("b").peekValueType(), "as");
  EXPECT_EQ(m.at("c").get<std::vector<std::string>>(), std::vector<std::string>{"x"});
  EXPECT_EQ(m.at("d").peekValueType(), "av");
  EXPECT_EQ(m.at("e").get<VariantMap>().at("f").get<std::int64_t>(), -1);
  EXPECT_EQ(m.at("g").get<double>(), 1.5);
}

}  // namespace
}  // namespace mtw::systemd
