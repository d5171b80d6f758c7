// JsonWriter (api/json_writer.h) and the status text written with it: the
// text must parse (boost::json as the independent reader) to the intended
// values, escape like boost::json::serialize, and give a user's status
// every field docs/api.md lists, in order.
#include "api/json_writer.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <limits>

#include "api/json_out.h"

namespace mtw::api::detail {
namespace {
namespace json = boost::json;

TEST(JsonWriter, NestedValuesParseBack) {
  std::string t;
  JsonWriter w(t);
  w.begin_object();
  w.field("a", std::uint64_t{18446744073709551615u})
      .field("b", std::int64_t{-9223372036854775807 - 1});
  w.field("c", true).field("d", false).key("e").null();
  w.key("f").begin_object().end_object();
  w.key("g")
      .begin_object()
      .field("x", 1)
      .key("y")
      .begin_object()
      .field("z", "q")
      .end_object()
      .end_object();
  w.field("h", std::optional<int>{}).field("i", std::optional<int>{7}).field("j", std::string("s"));
  w.end_object();
  EXPECT_EQ(
      t, R"({"a":18446744073709551615,"b":-9223372036854775808,"c":true,"d":false,"e":null,"f":{},)"
         R"("g":{"x":1,"y":{"z":"q"}},"h":null,"i":7,"j":"s"})");
  const json::value v = json::parse(t);
  EXPECT_EQ(v.at("a").as_uint64(), std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(v.at("b").as_int64(), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(v.at("g").at("y").at("z").as_string(), "q");
}

TEST(JsonWriter, EmptyTopLevelObject) {
  std::string t;
  JsonWriter(t).begin_object().end_object();
  EXPECT_EQ(t, "{}");
}

// kMaxDepth levels keep their commas apart (one bit each); one more is a
// programming error, caught in debug builds.
TEST(JsonWriter, NestsToMaxDepth) {
  std::string t;
  JsonWriter w(t);
  w.begin_object();
  for (int d = 1; d < JsonWriter::kMaxDepth; ++d) w.field("a", d).key("o").begin_object();
  w.field("a", JsonWriter::kMaxDepth).field("b", 0);
  for (int d = 0; d < JsonWriter::kMaxDepth; ++d) w.end_object();
  json::parse_options opt;
  opt.max_depth = JsonWriter::kMaxDepth;
  const json::value v = json::parse(t, {}, opt);
  const json::value* in = &v;
  for (int d = 1; d < JsonWriter::kMaxDepth; ++d) {
    ASSERT_EQ(in->at("a").as_int64(), d);
    in = &in->at("o");
  }
  EXPECT_EQ(in->at("a").as_int64(), JsonWriter::kMaxDepth);
  EXPECT_EQ(in->at("b").as_int64(), 0);
  std::string deeper;
  JsonWriter x(deeper);
  for (int d = 0; d < JsonWriter::kMaxDepth; ++d) x.begin_object().key("o");
  EXPECT_DEBUG_DEATH(x.begin_object(), "kMaxDepth");
}

// Every byte value in keys and values: the text is what boost::json writes
// for the same string, and parses back to the same bytes.
TEST(JsonWriter, EscapesLikeBoostJson) {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  for (const std::string& s :
       {all, std::string("plain"), std::string(), std::string("\"\\\"\\"),
        std::string("\xd0\xbf\xd1\x80\xd0\xbe\xd0\xba\xd1\x81\xd0\xb8 \xf0\x9f\x94\x91"),
        std::string("a\0b", 3), std::string("end\x1f")}) {
    std::string t;
    JsonWriter(t).value(s);
    EXPECT_EQ(t, json::serialize(json::string_view(s.data(), s.size()))) << s.size();
    if (s == all) continue;  // not valid UTF-8: boost::json refuses to parse it back, as it should
    EXPECT_EQ(json::parse(t).as_string(), json::string_view(s.data(), s.size()));
    std::string o;
    JsonWriter(o).begin_object().field(s, 1).end_object();
    EXPECT_EQ(json::parse(o).as_object().begin()->key(), json::string_view(s.data(), s.size()));
  }
}

UserStatus full_status() {
  UserStatus s;
  s.name = "alice \"the\" op";
  s.id = 42;
  s.state = "failed";
  s.fail_reason = "exec: no such file\n";
  s.enabled = false;
  s.expires_at = 1'800'000'000;
  s.worker_pid = 1234;
  s.worker_uid = 70001;
  s.restarts = 3;
  s.cell = CellInfo{"mtw-42", "mtw42h", "10.200.0.2", 1'000'000, 2'000'000};
  s.connections = 5;
  s.held = 1;
  s.refused = 2;
  s.connections_total = 99;
  s.unique_ips = 4;
  s.online = true;
  s.last_seen = 1'790'000'000;
  s.quota.state = supervisor::QuotaState::kThrottled;
  s.quota.used_bytes = 11;
  s.quota.quota_bytes = 10;
  s.quota.period = {1'700'000'000, supervisor::kForever};
  s.quota.resets_at = 1'700'086'400;
  s.throttled = s.throttled_quota = true;
  s.throttle_reason = "quota";
  s.rate_up_bps = 6;
  s.rate_down_bps = 7;
  s.measured_up_bps = 8;
  s.measured_down_bps = 9;
  s.bytes_up_total = std::numeric_limits<std::uint64_t>::max();
  s.bytes_down_total = 12;
  s.mode = "fallback";
  s.worker_counters = {
      {"handshakes", 5}, {"fail_replay", 0}, {"middle_clients", 17}, {"middle_down", 1}};
  s.upstream_names = {"dante", "dead"};
  s.upstreams_inherited = false;
  s.upstreams = {{"dante", true, 3, 1, 100, 200, 0}, {"dead", false, 0, 4, 0, 0, 1}};
  return s;
}

TEST(StatusText, EveryFieldInOrder) {
  std::string t;
  JsonWriter w(t);
  write_json(w, full_status());
  const json::object o = json::parse(t).as_object();
  std::vector<std::string> keys;
  for (const auto& kv : o) keys.emplace_back(kv.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"name",
                                            "id",
                                            "state",
                                            "fail_reason",
                                            "mode",
                                            "enabled",
                                            "expires_at",
                                            "worker_pid",
                                            "worker_uid",
                                            "restarts",
                                            "cell",
                                            "connections",
                                            "held",
                                            "refused",
                                            "connections_total",
                                            "unique_ips",
                                            "online",
                                            "last_seen",
                                            "quota",
                                            "throttled",
                                            "throttled_quota",
                                            "throttled_unique_ips",
                                            "throttle_reason",
                                            "rate_up_bps",
                                            "rate_down_bps",
                                            "measured_up_bps",
                                            "measured_down_bps",
                                            "share_up_bps",
                                            "share_down_bps",
                                            "bandwidth_weight",
                                            "bytes_up_total",
                                            "bytes_down_total",
                                            "egress_dropped",
                                            "middle",
                                            "worker_counters",
                                            "upstream_names",
                                            "upstreams_inherited",
                                            "upstreams"}));
  EXPECT_EQ(o.at("name").as_string(), "alice \"the\" op");
  EXPECT_EQ(o.at("fail_reason").as_string(), "exec: no such file\n");
  EXPECT_EQ(o.at("enabled").as_bool(), false);
  EXPECT_EQ(o.at("mode").as_string(), "fallback");
  EXPECT_EQ(o.at("middle").at("clients").as_int64(), 17);
  EXPECT_EQ(o.at("middle").at("clusters_down").as_int64(), 1);
  EXPECT_EQ(o.at("middle").at("connections").as_int64(), 0);
  EXPECT_EQ(o.at("expires_at").as_int64(), 1'800'000'000);
  EXPECT_EQ(o.at("cell").at("ipv4").as_string(), "10.200.0.2");
  EXPECT_EQ(o.at("cell").at("shaper_down_bps").as_int64(), 2'000'000);
  EXPECT_EQ(o.at("quota").at("state").as_string(), "throttled");
  EXPECT_TRUE(o.at("quota").at("period_end").is_null());
  EXPECT_EQ(o.at("quota").at("resets_at").as_int64(), 1'700'086'400);
  EXPECT_EQ(o.at("bytes_up_total").as_uint64(), std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(o.at("worker_counters").at("handshakes").as_int64(), 5);
  EXPECT_EQ(o.at("worker_counters").as_object().size(), 4u);
  ASSERT_EQ(o.at("upstreams").as_array().size(), 2u);
  const auto& up = o.at("upstreams").as_array()[1].as_object();
  EXPECT_EQ(up.at("name").as_string(), "dead");
  EXPECT_EQ(up.at("up").as_bool(), false);
  EXPECT_EQ(up.at("failures").as_int64(), 4);
  EXPECT_EQ(up.at("marked_down").as_int64(), 1);
  EXPECT_EQ(o.at("upstreams").as_array()[0].at("bytes_down").as_int64(), 200);
  EXPECT_EQ(o.at("upstream_names"), (json::array{"dante", "dead"}));
  EXPECT_EQ(o.at("upstreams_inherited").as_bool(), false);
  // The DOM used for records and D-Bus serializes to the same text.
  EXPECT_EQ(json::serialize(to_json(full_status())), t);
}

// D-Bus maps a DOM number by its kind, so to_json keeps each field's C++
// type: unsigned fields uint64, signed int64 (text parsed back would not).
TEST(StatusDom, NumbersKeepTheKindsOfTheirFields) {
  const json::object o = to_json(full_status()).as_object();
  EXPECT_TRUE(o.at("id").is_int64());
  EXPECT_TRUE(o.at("worker_pid").is_int64());
  EXPECT_TRUE(o.at("expires_at").is_int64());
  EXPECT_TRUE(o.at("worker_uid").is_uint64());
  EXPECT_TRUE(o.at("connections").is_uint64());
  EXPECT_TRUE(o.at("refused").is_uint64());
  EXPECT_TRUE(o.at("cell").at("shaper_up_bps").is_uint64());
  EXPECT_TRUE(o.at("quota").at("used_bytes").is_uint64());
  EXPECT_TRUE(o.at("quota").at("period_start").is_int64());
  EXPECT_TRUE(o.at("quota").at("resets_at").is_int64());
  EXPECT_TRUE(o.at("middle").at("clients").is_uint64());
  EXPECT_TRUE(o.at("worker_counters").at("fail_replay").is_uint64());
  EXPECT_TRUE(o.at("upstreams").as_array()[1].at("failures").is_uint64());
  EXPECT_TRUE(o.at("enabled").is_bool());
  EXPECT_TRUE(o.at("upstreams").as_array()[1].at("up").is_bool());
  EXPECT_TRUE(o.at("name").is_string());
}

TEST(StatusText, AbsentPartsAreNull) {
  UserStatus s;
  s.name = "u";
  std::string t;
  JsonWriter w(t);
  write_json(w, s);
  const json::object o = json::parse(t).as_object();
  EXPECT_TRUE(o.at("expires_at").is_null());
  EXPECT_TRUE(o.at("cell").is_null());
  EXPECT_TRUE(o.at("worker_counters").as_object().empty());
  EXPECT_TRUE(o.at("upstreams").as_array().empty());
  EXPECT_TRUE(o.at("quota").at("resets_at").is_null());
  EXPECT_EQ(json::serialize(to_json(s)), t);
}

}  // namespace
}  // namespace mtw::api::detail
