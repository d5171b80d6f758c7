// mtwardenctl's human output: units, times, tables, pretty JSON, renderers.
#include "ctl/format.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace mtw::ctl {
namespace {
namespace json = boost::json;

TEST(CtlFormat, SizesUseBinaryUnitsWithOneDecimal) {
  EXPECT_EQ(human_size(0), "0 B");
  EXPECT_EQ(human_size(1023), "1023 B");
  EXPECT_EQ(human_size(1024), "1 KiB");
  EXPECT_EQ(human_size(1536), "1.5 KiB");
  EXPECT_EQ(human_size(1048575), "1 MiB");  // rounds up into the next unit
  EXPECT_EQ(human_size(5u << 20), "5 MiB");
  EXPECT_EQ(human_size(53687091200ull), "50 GiB");
  EXPECT_EQ(human_size(1ull << 40), "1 TiB");
}

TEST(CtlFormat, RatesUseDecimalBitUnits) {
  EXPECT_EQ(human_rate(0), "0 bit/s");
  EXPECT_EQ(human_rate(999), "999 bit/s");
  EXPECT_EQ(human_rate(1500), "1.5 kbit/s");
  EXPECT_EQ(human_rate(20'000'000), "20 Mbit/s");
  EXPECT_EQ(human_rate(999'999), "1 Mbit/s");
  EXPECT_EQ(human_rate(2'500'000'000ull), "2.5 Gbit/s");
}

TEST(CtlFormat, TimesAreUtc) {
  EXPECT_EQ(format_date(0), "1970-01-01");
  EXPECT_EQ(format_date(1798761600), "2027-01-01");
  EXPECT_EQ(format_time(1798761600 + 3723), "2027-01-01 01:02:03Z");
  EXPECT_EQ(format_duration(42), "42s");
  EXPECT_EQ(format_duration(3 * 86400 + 4 * 3600 + 5), "3d 4h");
  EXPECT_EQ(format_duration(5 * 3600 + 12 * 60), "5h 12m");
}

TEST(CtlFormat, TablesAlignColumns) {
  EXPECT_EQ(render_table({"NAME", "STATE"}, {{"alice", "running"}, {"b", "idle"}}),
            "NAME   STATE\n"
            "alice  running\n"
            "b      idle\n");
}

TEST(CtlFormat, BlocksAlignValues) {
  EXPECT_EQ(render_block({{"a", "1"}, {"long", "2"}, {"", "3"}}),
            "a:    1\n"
            "long: 2\n"
            "      3\n");
}

TEST(CtlFormat, PrettyJsonKeepsOrderAndIndents) {
  EXPECT_EQ(pretty_json(json::parse(R"({"b":1,"a":[1,{"x":null}],"e":{},"f":[]})")),
            "{\n"
            "  \"b\": 1,\n"
            "  \"a\": [\n"
            "    1,\n"
            "    {\n"
            "      \"x\": null\n"
            "    }\n"
            "  ],\n"
            "  \"e\": {},\n"
            "  \"f\": []\n"
            "}\n");
}

TEST(CtlFormat, ApiErrorsNameCodeMessageAndField) {
  EXPECT_EQ(
      render_api_error(json::parse(
          R"({"error":{"code":"bad_request","message":"limits.rate_up: too low","field":"limits.rate_up"}})")),
      "bad_request: limits.rate_up: too low (field limits.rate_up)");
  EXPECT_EQ(
      render_api_error(json::parse(R"({"error":{"code":"not_found","message":"no such user"}})")),
      "not_found: no such user");
  EXPECT_EQ(render_api_error(json::parse(R"({"oops":1})")), "");
}

const char* kUser = R"({
  "name": "alice", "id": 3, "enabled": true, "expires_at": 1798761600,
  "comment": "", "origin": "runtime", "created_at": 1790000000,
  "secrets": [{"secret": "ee00", "expires_at": null}, {"secret": "ee11", "expires_at": 1798761600}],
  "limits": {"rate_up_bps": 20000000, "rate_down_bps": 0, "quota_bytes": 53687091200,
             "period": "monthly", "anchor_day": 1, "throttle_bps": 1000000,
             "warn_percent": 80, "max_connections": 0, "max_unique_ips": 0,
             "on_demand": false, "idle_teardown_s": 900, "bandwidth_weight": 3},
  "overrides": {"rate_up_bps": 20000000, "quota_bytes": 53687091200, "bandwidth_weight": 3},
  "status": {"state": "running", "mode": "middle", "connections": 2, "throttled": true, "throttle_reason": "quota",
             "cell": null, "quota": {"state": "throttled", "used_bytes": 1610612736, "quota_bytes": 53687091200,
             "period_end": null}, "measured_up_bps": 0, "worker_counters": {"handshakes": 5}}
})";

TEST(CtlFormat, MaskProfilesShowOneRowPerDomainWithSourceAndAge) {
  const std::string t = render_mask_profiles(json::parse(
      R"({"probing":true,"profiles":[
        {"domain":"a.example","target":"a.example:443","source":"measured","age_s":3600,
         "cipher":"1302","flight":[[36,36],[900,910]],"flight_wire_min":956,"flight_wire_max":966,
         "latency_ms":{"min":1,"median":2,"max":3},"next_probe_at":0,"last_error":""},
        {"domain":"b.example","target":"10.0.0.1:9","source":"builtin","age_s":-1,
         "cipher":"1301","flight":[[36,36]],"flight_wire_min":41,"flight_wire_max":41,
         "latency_ms":{"min":0,"median":0,"max":0},"next_probe_at":0,
         "last_error":"refused"}]})"));
  EXPECT_NE(t.find("DOMAIN"), std::string::npos) << t;
  EXPECT_NE(t.find("measured"), std::string::npos) << t;
  EXPECT_NE(t.find("36 900-910"), std::string::npos) << t;
  EXPECT_NE(t.find("956-966"), std::string::npos) << t;
  EXPECT_NE(t.find("builtin"), std::string::npos) << t;
  EXPECT_NE(t.find("refused"), std::string::npos) << t;
  EXPECT_NE(
      render_mask_profiles(json::parse(R"({"probing":false,"profiles":[]})")).find("probing off"),
      std::string::npos);
}

TEST(CtlFormat, UpstreamsShowWhatEachIsWhoUsesItAndItsHealth) {
  const std::string t = render_upstreams(json::parse(
      R"({"upstreams":[{"name":"dante","type":"socks5","address":"198.18.0.2:1080",
          "auth":"user-name","weight":3,"source":"","users":2,"workers_up":1,"workers_down":1,
          "connects":40,"failures":7,"marked_down":1,"bytes_up":1024,"bytes_down":2048},
          {"name":"eth1","type":"direct","address":"","auth":"none","weight":1,
          "source":"203.0.113.7","users":0,"workers_up":0,"workers_down":0,"connects":0,
          "failures":0,"marked_down":0,"bytes_up":0,"bytes_down":0}]})"));
  EXPECT_NE(t.find("198.18.0.2:1080"), std::string::npos) << t;
  EXPECT_NE(t.find("user-name"), std::string::npos) << t;
  EXPECT_NE(t.find("1/1"), std::string::npos) << t;          // one worker up, one down
  EXPECT_NE(t.find("3 KiB"), std::string::npos) << t;        // both directions
  EXPECT_NE(t.find("203.0.113.7"), std::string::npos) << t;  // a direct one: its source
  EXPECT_NE(render_upstreams(json::parse(R"({"upstreams":[]})")).find("directly"),
            std::string::npos);
}

TEST(CtlFormat, FleetMarksThisHostAndShowsSweepAges) {
  const std::string t = render_fleet(json::parse(
      R"({"backend":"postgresql","this_host":"edge-1","read_at":1700000000,"last_error":"",
          "hosts":[{"name":"edge-1","this_host":true,"first_seen":1699990000,
                    "last_sweep_at":1699999999,"last_sweep_age_s":1,"last_sweep_seq":40},
                   {"name":"edge-2","this_host":false,"first_seen":1699990000,
                    "last_sweep_at":null,"last_sweep_age_s":null,"last_sweep_seq":0}]})"));
  EXPECT_NE(t.find("store postgresql, this host edge-1"), std::string::npos) << t;
  EXPECT_NE(t.find("edge-1 *"), std::string::npos) << t;
  EXPECT_EQ(t.find("edge-2 *"), std::string::npos) << t;
  EXPECT_NE(t.find("SWEEP_AGE"), std::string::npos) << t;
  EXPECT_NE(t.find("40"), std::string::npos) << t;
  const std::string broken = render_fleet(json::parse(
      R"({"backend":"postgresql","this_host":"edge-1","read_at":0,
          "last_error":"store: connection refused","hosts":[]})"));
  EXPECT_NE(broken.find("hosts not read"), std::string::npos) << broken;
  EXPECT_NE(broken.find("connection refused"), std::string::npos) << broken;
  EXPECT_NE(broken.find("no hosts read yet"), std::string::npos) << broken;
}

TEST(CtlFormat, UserListShowsOneRowPerUser) {
  json::value list =
      json::parse(std::string(R"({"users":[)") + kUser +
                  R"(,{"name":"bob","enabled":false,"expires_at":null,"limits":{"quota_bytes":0},
                                     "status":{"state":"disabled","mode":"direct","connections":0,"throttled":false,
                                     "quota":{"used_bytes":0}}}]})");
  EXPECT_EQ(render_user_list(list),
            "NAME   STATE     MODE    ENABLED  CONNS  USAGE    QUOTA      THROTTLED    EXPIRES\n"
            "alice  running   middle  yes      2      1.5 GiB  50 GiB     yes (quota)  2026-12-31\n"
            "bob    disabled  direct  no       0      0 B      unlimited  no           never\n");
  EXPECT_EQ(render_user_list(json::parse(R"({"users":[]})")), "no users\n");
}

TEST(CtlFormat, UserShowsSettingsSecretsLimitsAndStatus) {
  std::string out = render_user(json::parse(kUser));
  EXPECT_NE(out.find("name:       alice\n"), std::string::npos) << out;
  EXPECT_NE(out.find("expires_at: 2027-01-01 00:00:00Z\n"), std::string::npos) << out;
  EXPECT_NE(out.find("comment:    -\n"), std::string::npos) << out;
  EXPECT_NE(out.find("secrets:    ee00\n            ee11  (expires 2027-01-01 00:00:00Z)\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("limits:\n"), std::string::npos) << out;
  EXPECT_NE(out.find("  rate_up_bps:      20 Mbit/s  (set for this user)\n"), std::string::npos)
      << out;
  EXPECT_NE(out.find("  rate_down_bps:    unlimited\n"), std::string::npos) << out;
  EXPECT_NE(out.find("  quota_bytes:      50 GiB  (set for this user)\n"), std::string::npos)
      << out;
  EXPECT_NE(out.find("  idle_teardown_s:  900 s\n"), std::string::npos) << out;
  EXPECT_NE(out.find("  bandwidth_weight: 3  (set for this user)\n"), std::string::npos) << out;
  EXPECT_NE(out.find("status:\n"), std::string::npos) << out;
  EXPECT_NE(out.find("quota.used_bytes:"), std::string::npos) << out;
  EXPECT_NE(out.find("1.5 GiB\n"), std::string::npos) << out;
  EXPECT_NE(out.find("quota.period_end:"), std::string::npos) << out;
  EXPECT_NE(out.find("never\n"), std::string::npos) << out;
  EXPECT_NE(out.find("worker_counters.handshakes:"), std::string::npos) << out;
  EXPECT_NE(out.find("measured_up_bps:            0 bit/s"), std::string::npos) << out;
}

TEST(CtlFormat, StatusIsAKeyValueBlock) {
  EXPECT_EQ(
      render_status(json::parse(
          R"({"version":"0.1.0","uptime_s":90061,"listeners":["0.0.0.0:443","[::]:443"],"gate_ready":true,
                    "gate_counters":{"fail_replay":2}})")),
      "version:                   0.1.0\n"
      "uptime_s:                  1d 1h\n"
      "listeners:                 0.0.0.0:443, [::]:443\n"
      "gate_ready:                yes\n"
      "gate_counters.fail_replay: 2\n");
}

TEST(CtlFormat, UsageTableEndsWithATotal) {
  EXPECT_EQ(
      render_usage(json::parse(
          R"({"by":"day","items":[{"date":"2026-11-22","bytes_up":1024,"bytes_down":2048,"bytes_total":3072},
                                       {"date":"2026-11-23","bytes_up":0,"bytes_down":0,"bytes_total":0}]})")),
      "DATE        UP     DOWN   TOTAL\n"
      "2026-11-22  1 KiB  2 KiB  3 KiB\n"
      "2026-11-23  0 B    0 B    0 B\n"
      "total       1 KiB  2 KiB  3 KiB\n");
  EXPECT_EQ(render_usage(
                json::parse(R"({"by":"month","items":[{"date":"2026-11","bytes_up":1,"bytes_down":1,
                                          "bytes_total":2}]})"))
                .substr(0, 6),
            "MONTH ");
}

TEST(CtlFormat, LinksListHostPortsAndEveryLink) {
  EXPECT_EQ(
      render_links(json::parse(
          R"({"host":"h.example","ports":[443,8443],"tg":["tg://a","tg://b"],"https":["https://t.me/a"]})")),
      "host:  h.example\n"
      "ports: 443, 8443\n"
      "tg://a\n"
      "tg://b\n"
      "https://t.me/a\n");
}

TEST(CtlFormat, IpsTableWithKeysOrNoConnection) {
  EXPECT_EQ(
      render_ips(json::parse(
          R"({"name":"a","ipv6_prefix":64,"truncated":false,"ips":[{"address":"198.51.100.7","key":"198.51.100.7","connections":2},{"address":"2001:db8::a","key":"2001:db8::/64","connections":1}]})")),
      "ADDRESS       KEY            CONNS\n"
      "198.51.100.7  198.51.100.7   2\n"
      "2001:db8::a   2001:db8::/64  1\n");
  EXPECT_EQ(render_ips(json::parse(R"({"name":"a","truncated":false,"ips":[]})")),
            "no connection open\n");
  EXPECT_NE(render_ips(json::parse(R"({"truncated":true,"ips":[]})")).find("more addresses"),
            std::string::npos);
}

TEST(CtlFormat, LastSeenIsATime) {
  const std::string out =
      render_user(json::parse(R"({"name":"a","status":{"online":false,"last_seen":1790000000}})"));
  EXPECT_NE(out.find("last_seen"), std::string::npos) << out;
  EXPECT_NE(out.find("2026-09-21 14:13:20Z"), std::string::npos) << out;
}

TEST(CtlFormat, UpstreamsInheritedDirectOrListed) {
  EXPECT_NE(render_user(json::parse(R"({"name":"a","upstreams":null})"))
                .find("inherit ([egress] upstreams)"),
            std::string::npos);
  const std::string direct = render_user(json::parse(R"({"name":"a","upstreams":[]})"));
  EXPECT_NE(direct.find("upstreams: direct"), std::string::npos) << direct;
  const std::string listed = render_user(json::parse(R"({"name":"a","upstreams":["x","y"]})"));
  EXPECT_NE(listed.find("upstreams: x, y"), std::string::npos) << listed;
}

TEST(CtlFormat, EventsTable) {
  EXPECT_EQ(
      render_events(json::parse(
          R"({"events":[{"seq":5,"at":1790000000,"user":"alice","kind":"quota_warned","detail":"80%"},
                              {"seq":6,"at":1790000001,"user":"","kind":"reload","detail":""}]})")),
      "SEQ  TIME                  USER   KIND          DETAIL\n"
      "5    2026-09-21 14:13:20Z  alice  quota_warned  80%\n"
      "6    2026-09-21 14:13:21Z  -      reload        -\n");
  EXPECT_EQ(render_events(json::parse(R"({"events":[]})")), "no events\n");
}

TEST(CtlFormat, PrintableEscapesControlCharacters) {
  EXPECT_EQ(printable("plain text, ünïcode \\ and 'quotes'"),
            "plain text, ünïcode \\ and 'quotes'");
  EXPECT_EQ(printable("a\nb\tc\rd"), "a\\nb\\tc\\rd");
  EXPECT_EQ(printable("\x1b[2J\x07\x7f"), "\\x1b[2J\\x07\\x7f");
  EXPECT_EQ(printable(std::string("\xc2\x9b") + "31m"), "\\u009b31m");  // C1 CSI in UTF-8
  EXPECT_EQ(printable(std::string_view("\0x", 2)), "\\x00x");
}

TEST(CtlFormat, CommentsWithControlCharactersPrintEscaped) {
  // A comment is stored as given; printing it must not drive the terminal.
  const json::value u = json::parse(
      R"({"name":"alice","comment":"hi\u001b]0;owned\u0007\nnext\u009b1m","enabled":true})");
  const std::string out = render_user(u);
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
  EXPECT_EQ(out.find('\x07'), std::string::npos) << out;
  EXPECT_EQ(out.find("\xc2\x9b"), std::string::npos) << out;
  EXPECT_NE(out.find(" hi\\x1b]0;owned\\x07\\nnext\\u009b1m\n"), std::string::npos) << out;
  const std::string pj = pretty_json(u);
  EXPECT_EQ(pj.find("\xc2\x9b"), std::string::npos) << pj;
  EXPECT_EQ(json::parse(pj), u);  // still the same JSON
  const std::string err = render_api_error(
      json::parse(R"({"error":{"code":"not_found","message":"no user named \"a\u001b[2Jb\""}})"));
  EXPECT_EQ(err, "not_found: no user named \"a\\x1b[2Jb\"");
}

}  // namespace
}  // namespace mtw::ctl
