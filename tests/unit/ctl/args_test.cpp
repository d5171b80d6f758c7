// mtwardenctl's argv -> request mapping, without a server.
#include "ctl/args.h"

#include <gtest/gtest.h>

#include <stdlib.h>
#include <unistd.h>

#include <boost/json.hpp>

namespace mtw::ctl {
namespace {
namespace json = boost::json;

Invocation parse_ok(std::vector<std::string> args, Env env = {}) {
  auto p = parse_command_line(args, env);
  EXPECT_TRUE(p.has_value()) << (p ? "" : p.error().context);
  if (!p || !p->invocation) {
    ADD_FAILURE() << "no invocation";
    return {};
  }
  return *p->invocation;
}

std::string parse_err(std::vector<std::string> args) {
  auto p = parse_command_line(args, {});
  EXPECT_FALSE(p.has_value());
  return p ? "" : p.error().context;
}

void expect_request(std::vector<std::string> args, std::string_view method, std::string_view target,
                    std::optional<std::string_view> body_json, Output out) {
  Invocation inv = parse_ok(args);
  EXPECT_EQ(inv.request.method, method) << args[0];
  EXPECT_EQ(inv.request.target, target);
  if (body_json) {
    ASSERT_TRUE(inv.request.body.has_value()) << target;
    EXPECT_EQ(*inv.request.body, json::parse(*body_json)) << json::serialize(*inv.request.body);
    EXPECT_EQ(json::serialize(*inv.request.body), json::serialize(json::parse(*body_json)));
  } else {
    EXPECT_FALSE(inv.request.body.has_value()) << target;
  }
  EXPECT_EQ(inv.request.output, out) << target;
}

TEST(CtlArgs, MapsEveryCommandToItsRequest) {
  expect_request({"users", "list"}, "GET", "/v1/users", std::nullopt, Output::kUserList);
  expect_request({"users", "show", "alice"}, "GET", "/v1/users/alice", std::nullopt, Output::kUser);
  expect_request({"users", "rm", "alice"}, "DELETE", "/v1/users/alice", std::nullopt,
                 Output::kDone);
  expect_request({"users", "enable", "alice"}, "POST", "/v1/users/alice/enable", std::nullopt,
                 Output::kUser);
  expect_request({"users", "disable", "alice"}, "POST", "/v1/users/alice/disable", std::nullopt,
                 Output::kUser);
  expect_request({"users", "reset", "alice"}, "POST", "/v1/users/alice/reset", std::nullopt,
                 Output::kDone);
  expect_request({"link", "alice"}, "GET", "/v1/users/alice/links", std::nullopt, Output::kLinks);
  expect_request({"users", "ips", "alice"}, "GET", "/v1/users/alice/ips", std::nullopt,
                 Output::kIps);
  expect_request({"status"}, "GET", "/v1/status", std::nullopt, Output::kStatus);
  expect_request({"reload"}, "POST", "/v1/reload", std::nullopt, Output::kDone);
  expect_request({"token", "rotate"}, "POST", "/v1/token/rotate", std::nullopt, Output::kToken);
  expect_request({"events"}, "GET", "/v1/events", std::nullopt, Output::kEvents);
  expect_request({"events", "--after", "5", "--limit", "20"}, "GET", "/v1/events?after=5&limit=20",
                 std::nullopt, Output::kEvents);
  expect_request({"usage", "alice"}, "GET", "/v1/users/alice/usage", std::nullopt, Output::kUsage);
  expect_request({"usage", "alice", "--by", "month", "--from", "2026-01", "--to", "2026-11-30"},
                 "GET", "/v1/users/alice/usage?by=month&from=2026-01&to=2026-11-30", std::nullopt,
                 Output::kUsage);
  expect_request({"usage", "alice", "--to", "2026-02-28"}, "GET",
                 "/v1/users/alice/usage?to=2026-02-28", std::nullopt, Output::kUsage);
}

TEST(CtlArgs, UsersAddWithoutFlagsSendsOnlyTheName) {
  expect_request({"users", "add", "bob"}, "POST", "/v1/users", R"({"name":"bob"})", Output::kUser);
}

TEST(CtlArgs, UsersAddMapsEveryFlag) {
  expect_request({"users",
                  "add",
                  "bob",
                  "--secret",
                  "00112233445566778899aabbccddeeff",
                  "--secret=dd00",
                  "--domain",
                  "example.com",
                  "--disabled",
                  "--expires",
                  "2027-01-31",
                  "--comment",
                  "hi there",
                  "--rate-up",
                  "20mbit",
                  "--rate-down",
                  "2MB/s",
                  "--quota",
                  "50GiB",
                  "--period",
                  "weekly",
                  "--anchor-day",
                  "3",
                  "--throttle",
                  "1mbit",
                  "--warn-percent",
                  "90",
                  "--max-connections",
                  "100",
                  "--max-ips",
                  "default",
                  "--on-demand",
                  "on",
                  "--idle-teardown",
                  "600"},
                 "POST", "/v1/users",
                 R"({"name":"bob","secrets":["00112233445566778899aabbccddeeff","dd00"],
                     "tls_domain":"example.com","enabled":false,"expires_at":"2027-01-31",
                     "comment":"hi there","limits":{"rate_up":20000000,"rate_down":16000000,
                     "quota":53687091200,"period":"weekly","anchor_day":3,"throttle_rate":1000000,
                     "warn_percent":90,"max_connections":100,"max_unique_ips":null,"on_demand":true,
                     "idle_teardown_s":600}})",
                 Output::kUser);
}

TEST(CtlArgs, UsersAddExpiresNeverIsNull) {
  expect_request({"users", "add", "bob", "--expires", "never"}, "POST", "/v1/users",
                 R"({"name":"bob","expires_at":null})", Output::kUser);
}

TEST(CtlArgs, UsersLimitPatchesLimitsAndDefaultMeansNull) {
  expect_request({"users", "limit", "carol", "--quota", "unlimited", "--rate-up", "default",
                  "--rate-down", "unlimited", "--on-demand", "off", "--expires", "never"},
                 "PATCH", "/v1/users/carol",
                 R"({"expires_at":null,"limits":{"rate_up":null,"rate_down":0,"quota":"unlimited",
                     "on_demand":false}})",
                 Output::kUser);
  expect_request({"users", "limit", "carol", "--expires", "2026-12-31"}, "PATCH", "/v1/users/carol",
                 R"({"expires_at":"2026-12-31"})", Output::kUser);
  expect_request({"users", "limit", "carol", "--period", "default", "--throttle", "2000000"},
                 "PATCH", "/v1/users/carol",
                 R"({"limits":{"period":null,"throttle_rate":2000000}})", Output::kUser);
}

TEST(CtlArgs, UsersSetMapsUpstreamsAndReadsThePasswordFromAFile) {
  expect_request({"users", "set", "ann", "--upstreams", "dante,micro"}, "PATCH", "/v1/users/ann",
                 R"({"upstreams":["dante","micro"]})", Output::kUser);
  expect_request({"users", "set", "ann", "--upstreams", "direct"}, "PATCH", "/v1/users/ann",
                 R"({"upstreams":[]})", Output::kUser);
  expect_request({"users", "set", "ann", "--upstreams=inherit"}, "PATCH", "/v1/users/ann",
                 R"({"upstreams":null})", Output::kUser);
  char path[] = "/tmp/mtw-ctl-pw-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string text = "s3cret pw\r\nsecond line\n";
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
  expect_request({"users", "set", "ann", "--upstream-password-file", path}, "PATCH",
                 "/v1/users/ann", R"({"upstream_password":"s3cret pw"})", Output::kUser);
  expect_request({"users", "add", "bob", "--upstreams", "a", "--upstream-password-file", path},
                 "POST", "/v1/users",
                 R"({"name":"bob","upstreams":["a"],"upstream_password":"s3cret pw"})",
                 Output::kUser);
  ::unlink(path);
  EXPECT_EQ(parse_err({"users", "set", "ann"}),
            "users set: nothing to change (see mtwardenctl users set --help)");
  expect_request({"users", "set", "ann", "--bandwidth-weight", "3"}, "PATCH", "/v1/users/ann",
                 R"({"limits":{"bandwidth_weight":3}})", Output::kUser);
  expect_request({"users", "set", "ann", "--bandwidth-weight", "default", "--upstreams", "a"},
                 "PATCH", "/v1/users/ann",
                 R"({"upstreams":["a"],"limits":{"bandwidth_weight":null}})", Output::kUser);
  expect_request({"users", "limit", "ann", "--bandwidth-weight", "1000"}, "PATCH", "/v1/users/ann",
                 R"({"limits":{"bandwidth_weight":1000}})", Output::kUser);
  for (const char* bad : {"0", "1001", "heavy", "-2"})
    EXPECT_EQ(parse_err({"users", "set", "ann", "--bandwidth-weight", bad}),
              std::string("--bandwidth-weight: expected a weight 1..1000 or default, got \"") +
                  bad + "\"")
        << bad;
  EXPECT_EQ(parse_err({"users", "set", "ann", "--upstreams", "a,,b"}),
            "--upstreams: expected inherit, direct or NAME[,NAME...], got an empty name");
  EXPECT_EQ(parse_err({"users", "set", "ann", "--upstream-password-file", path}).substr(0, 38),
            "--upstream-password-file: open /tmp/mt");
}

TEST(CtlArgs, UsersRotateMapsSecretAndGrace) {
  expect_request({"users", "rotate", "dave"}, "POST", "/v1/users/dave/rotate", "{}", Output::kUser);
  expect_request({"users", "rotate", "dave", "--secret", "ee00", "--grace", "0"}, "POST",
                 "/v1/users/dave/rotate", R"({"secret":"ee00","grace_s":0})", Output::kUser);
}

TEST(CtlArgs, QrPicksFormatIndexAndFile) {
  Invocation inv = parse_ok({"qr", "erin", "--png", "/tmp/x.png"});
  EXPECT_EQ(inv.request.target, "/v1/users/erin/qr?format=png");
  EXPECT_EQ(inv.request.file, "/tmp/x.png");
  EXPECT_EQ(inv.request.output, Output::kQr);
  inv = parse_ok({"qr", "erin", "--svg", "out.svg", "--index", "2"});
  EXPECT_EQ(inv.request.method, "GET");
  EXPECT_EQ(inv.request.target, "/v1/users/erin/qr?format=svg&index=2");
  EXPECT_EQ(inv.request.file, "out.svg");
}

TEST(CtlArgs, EscapesUserNamesInPaths) {
  EXPECT_EQ(parse_ok({"users", "show", "a b/c"}).request.target, "/v1/users/a%20b%2Fc");
  EXPECT_EQ(parse_ok({"users", "show", "al.ice_-1"}).request.target, "/v1/users/al.ice_-1");
}

TEST(CtlArgs, EndpointDefaultsToTheSocketAndHonoursEnvAndFlags) {
  Invocation inv = parse_ok({"status"});
  EXPECT_FALSE(inv.endpoint.tcp);
  EXPECT_EQ(inv.endpoint.socket_path, "/run/mtwarden/api.sock");
  EXPECT_EQ(inv.endpoint.token, "");
  EXPECT_FALSE(inv.json);
  inv = parse_ok({"status"}, Env{"/tmp/env.sock", "tok-env"});
  EXPECT_EQ(inv.endpoint.socket_path, "/tmp/env.sock");
  EXPECT_EQ(inv.endpoint.token, "tok-env");
  inv = parse_ok({"--socket", "/tmp/a.sock", "--json", "status"}, Env{"/tmp/env.sock", ""});
  EXPECT_EQ(inv.endpoint.socket_path, "/tmp/a.sock");
  EXPECT_TRUE(inv.json);
  inv = parse_ok({"--url", "http://127.0.0.1:8080", "--token", "t1", "users", "list"},
                 Env{"", "tok-env"});
  EXPECT_TRUE(inv.endpoint.tcp);
  EXPECT_EQ(inv.endpoint.host, "127.0.0.1");
  EXPECT_EQ(inv.endpoint.port, "8080");
  EXPECT_EQ(inv.endpoint.token, "t1");
  inv = parse_ok({"--url=http://[::1]:9/", "status"});
  EXPECT_EQ(inv.endpoint.host, "::1");
  EXPECT_EQ(inv.endpoint.port, "9");
}

TEST(CtlArgs, GlobalOptionsWorkAfterTheCommand) {
  Invocation inv = parse_ok({"users", "show", "alice", "--json", "--socket=/x.sock"});
  EXPECT_TRUE(inv.json);
  EXPECT_EQ(inv.endpoint.socket_path, "/x.sock");
  EXPECT_EQ(inv.request.target, "/v1/users/alice");
}

TEST(CtlArgs, DoubleDashAllowsNamesStartingWithADash) {
  EXPECT_EQ(parse_ok({"users", "show", "--", "-x"}).request.target, "/v1/users/-x");
}

TEST(CtlArgs, RejectsBadCommandLinesWithAClearMessage) {
  EXPECT_EQ(parse_err({}), "no command given (see mtwardenctl --help)");
  EXPECT_EQ(parse_err({"frobnicate"}), "unknown command \"frobnicate\" (see mtwardenctl --help)");
  EXPECT_EQ(parse_err({"users"}), "users needs a subcommand (see mtwardenctl users --help)");
  EXPECT_EQ(parse_err({"users", "frob"}),
            "unknown command \"users frob\" (see mtwardenctl --help)");
  EXPECT_EQ(parse_err({"users", "show"}),
            "users show: missing NAME (see mtwardenctl users show --help)");
  EXPECT_EQ(parse_err({"users", "show", "a", "b"}),
            "users show: unexpected argument \"b\" (see mtwardenctl users show --help)");
  EXPECT_EQ(parse_err({"users", "list", "--bogus"}),
            "unknown option --bogus for users list (see mtwardenctl users list --help)");
  EXPECT_EQ(parse_err({"--bogus", "status"}), "unknown option --bogus (see mtwardenctl --help)");
  EXPECT_EQ(parse_err({"users", "add", "bob", "--comment"}),
            "--comment needs a value (see mtwardenctl users add --help)");
  EXPECT_EQ(parse_err({"users", "add", "bob", "--domain", "a", "--domain", "b"}),
            "--domain given twice");
  EXPECT_EQ(parse_err({"users", "add", "bob", "--disabled=yes"}), "--disabled takes no value");
  EXPECT_EQ(parse_err({"users", "limit", "bob"}),
            "users limit: nothing to change (see mtwardenctl users limit --help)");
  EXPECT_EQ(parse_err({"status", "--socket"}), "--socket needs a value");
  EXPECT_EQ(parse_err({"--socket", "/a", "--url", "http://h:1", "status"}),
            "give --socket or --url, not both");
  EXPECT_EQ(parse_err({"--url", "https://h:1", "status"}),
            "--url: expected http://HOST:PORT, got \"https://h:1\"");
  EXPECT_EQ(parse_err({"--url", "http://h", "status"}),
            "--url: expected http://HOST:PORT, got \"http://h\"");
}

TEST(CtlArgs, RejectsBadValues) {
  EXPECT_EQ(parse_err({"users", "limit", "b", "--rate-up", "fast"}),
            "--rate-up: bad rate \"fast\" (e.g. 20mbit, 2.5MB/s, 500000, unlimited, default)");
  EXPECT_EQ(parse_err({"users", "limit", "b", "--quota", "5x"}),
            "--quota: bad size \"5x\" (e.g. 50GiB, 500MB, unlimited, default)");
  EXPECT_EQ(parse_err({"users", "limit", "b", "--period", "hourly"}),
            "--period: expected daily, weekly, monthly, lifetime or default, got \"hourly\"");
  EXPECT_EQ(parse_err({"users", "limit", "b", "--on-demand", "maybe"}),
            "--on-demand: expected on, off or default, got \"maybe\"");
  EXPECT_EQ(parse_err({"users", "limit", "b", "--anchor-day", "0"}),
            "--anchor-day: expected a day 1..31 (month) or 1..7 (week), got \"0\"");
  EXPECT_EQ(parse_err({"users", "limit", "b", "--max-ips", "-1"}),
            "--max-ips: expected a whole number up to 4294967295, got \"-1\"");
  EXPECT_EQ(parse_err({"users", "add", "b", "--expires", "2026-02-30"}),
            "--expires: expected YYYY-MM-DD or never, got \"2026-02-30\"");
  EXPECT_EQ(parse_err({"users", "rotate", "b", "--grace", "1h"}),
            "--grace: expected a whole number up to 4294967295, got \"1h\"");
  EXPECT_EQ(parse_err({"usage", "b", "--by", "year"}), "--by: expected day or month, got \"year\"");
  EXPECT_EQ(parse_err({"usage", "b", "--from", "2026-01"}),
            "--from: expected a date YYYY-MM-DD, got \"2026-01\"");
  EXPECT_EQ(parse_err({"events", "--after", "x"}).substr(0, 30), "--after: expected a whole numb");
  EXPECT_EQ(parse_err({"qr", "b"}),
            "qr: give exactly one of --png FILE or --svg FILE (see mtwardenctl qr --help)");
  EXPECT_EQ(parse_err({"qr", "b", "--png", "a", "--svg", "b"}),
            "qr: give exactly one of --png FILE or --svg FILE (see mtwardenctl qr --help)");
}

TEST(CtlArgs, HelpForTheProgramAndEveryCommand) {
  for (const std::string& topic : help_topics()) {
    std::vector<std::string> args;
    for (std::size_t p = 0, q; p < topic.size(); p = q + 1) {
      q = topic.find(' ', p);
      if (q == std::string::npos) q = topic.size();
      args.push_back(topic.substr(p, q - p));
    }
    args.push_back("--help");
    auto p = parse_command_line(args, {});
    ASSERT_TRUE(p.has_value()) << topic;
    EXPECT_FALSE(p->invocation.has_value()) << topic;
    EXPECT_EQ(p->help, help_text(topic)) << topic;
    EXPECT_NE(p->help.find("Usage: mtwardenctl"), std::string::npos) << topic;
    EXPECT_NE(p->help.find("3 cannot reach the API"), std::string::npos) << topic;
  }
  auto p = parse_command_line({"help", "users", "add"}, {});
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->help, help_text("users add"));
  EXPECT_EQ(parse_command_line({"-h"}, {})->help, help_text(""));
  // Help wins over missing arguments.
  EXPECT_EQ(parse_command_line({"users", "add", "-h"}, {})->help, help_text("users add"));
}

TEST(CtlArgs, HelpDocumentsEveryCommandAndFlag) {
  const std::string main = help_text("");
  for (std::string_view cmd :
       {"users add", "users list", "users show", "users rm", "users enable", "users disable",
        "users reset", "users limit", "users set", "users rotate", "users ips", "link", "qr",
        "status", "usage", "reload", "events", "token rotate"}) {
    EXPECT_NE(main.find(cmd), std::string::npos) << cmd;
    EXPECT_FALSE(help_text(cmd).empty()) << cmd;
  }
  for (std::string_view flag : {"--socket", "--url", "--token", "--json", "--help"}) {
    EXPECT_NE(main.find(flag), std::string::npos) << flag;
  }
  const std::string add = help_text("users add");
  for (std::string_view flag :
       {"--secret", "--domain", "--disabled", "--expires", "--comment", "--rate-up", "--rate-down",
        "--quota", "--period", "--anchor-day", "--throttle", "--warn-percent", "--max-connections",
        "--max-ips", "--on-demand", "--idle-teardown", "--bandwidth-weight"}) {
    EXPECT_NE(add.find(flag), std::string::npos) << flag;
    if (flag != "--secret" && flag != "--domain" && flag != "--disabled" && flag != "--comment") {
      EXPECT_NE(help_text("users limit").find(flag), std::string::npos) << flag;
    }
  }
  for (std::string_view flag : {"--upstreams", "--upstream-password-file"}) {
    EXPECT_NE(add.find(flag), std::string::npos) << flag;
    EXPECT_NE(help_text("users set").find(flag), std::string::npos) << flag;
  }
  EXPECT_NE(help_text("qr").find("--index"), std::string::npos);
  EXPECT_NE(help_text("usage").find("--from"), std::string::npos);
  EXPECT_NE(help_text("events").find("--limit"), std::string::npos);
  EXPECT_NE(help_text("users rotate").find("--grace"), std::string::npos);
}

}  // namespace
}  // namespace mtw::ctl
