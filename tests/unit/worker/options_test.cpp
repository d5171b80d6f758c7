#include "worker/options.h"

#include <gtest/gtest.h>

namespace mtw::worker {
namespace {

constexpr std::string_view kSimple = "0123456789abcdef0123456789abcdef";
// ee + key + "example.com"
constexpr std::string_view kTls = "ee0123456789abcdef0123456789abcdef6578616d706c652e636f6d";

Result<Options> parse(std::vector<std::string_view> args) { return parse_options(args); }

TEST(Options, ParsesMinimalStandaloneCommandLine) {
  auto o = parse({"--bind", "127.0.0.1:0", "--secret", kSimple});
  ASSERT_TRUE(o) << o.error().to_string();
  ASSERT_EQ(o->binds.size(), 1u);
  EXPECT_EQ(o->binds[0].host, "127.0.0.1");
  EXPECT_EQ(o->binds[0].port, 0);
  ASSERT_EQ(o->secrets.size(), 1u);
  EXPECT_TRUE(o->fast_mode);
  EXPECT_EQ(o->handshake_timeout_ms, 10'000u);
  EXPECT_EQ(o->control_fd, -1);
}

TEST(Options, ParsesEveryFlag) {
  auto o = parse({"--bind",
                  "127.0.0.1:443",
                  "--bind=[::1]:8443",
                  "--secret",
                  kSimple,
                  "--secret",
                  kTls,
                  "--secrets-file",
                  "/tmp/s",
                  "--dc",
                  "2=127.0.0.1:9000",
                  "--mask",
                  "127.0.0.1:8080",
                  "--mask-domain",
                  "a.example=10.0.0.2:443",
                  "--mask-domain-port",
                  "443",
                  "--unknown-sni",
                  "drop",
                  "--mask-connect-timeout",
                  "2",
                  "--allow",
                  "tls",
                  "--tls-skew",
                  "30",
                  "--public-host",
                  "proxy.example",
                  "--control-fd",
                  "7",
                  "--fast-mode",
                  "off",
                  "--prefer-ipv6",
                  "--handshake-timeout",
                  "2.5",
                  "--idle-timeout",
                  "60",
                  "--dc-connect-timeout",
                  "250ms",
                  "--drain-timeout",
                  "5",
                  "--mask-discard-timeout",
                  "1",
                  "--max-connections",
                  "100",
                  "--stats-interval",
                  "0",
                  "--stats-file",
                  "/tmp/stats.json",
                  "--log-level",
                  "debug"});
  ASSERT_TRUE(o) << o.error().to_string();
  EXPECT_EQ(o->binds.size(), 2u);
  EXPECT_EQ(o->binds[1].host, "::1");
  EXPECT_EQ(o->secrets.size(), 2u);
  EXPECT_EQ(o->secrets_file, "/tmp/s");
  EXPECT_EQ(o->dc_overrides, std::vector<std::string>{"2=127.0.0.1:9000"});
  ASSERT_TRUE(o->mask.global);
  EXPECT_EQ(o->mask.global->port, 8080);
  ASSERT_EQ(o->mask.domains.size(), 1u);
  EXPECT_EQ(o->mask.domains[0].first, "a.example");
  EXPECT_TRUE(o->mask.domain_default);
  EXPECT_EQ(o->mask.default_port, 443);
  EXPECT_EQ(o->mask.unknown_sni, proto::UnknownSniAction::kDrop);
  EXPECT_EQ(o->mask_connect_timeout_ms, 2000u);
  EXPECT_TRUE(o->allowed.fake_tls);
  EXPECT_FALSE(o->allowed.abridged);
  EXPECT_EQ(o->tls_skew_seconds, 30);
  EXPECT_EQ(o->public_host, "proxy.example");
  EXPECT_EQ(o->control_fd, 7);
  EXPECT_FALSE(o->fast_mode);
  EXPECT_TRUE(o->prefer_ipv6);
  EXPECT_EQ(o->handshake_timeout_ms, 2500u);
  EXPECT_EQ(o->idle_timeout_ms, 60'000u);
  EXPECT_EQ(o->dc_connect_timeout_ms, 250u);
  EXPECT_EQ(o->drain_timeout_ms, 5000u);
  EXPECT_EQ(o->mask_discard_timeout_ms, 1000u);
  EXPECT_EQ(o->max_connections, 100u);
  EXPECT_EQ(o->stats_interval_ms, 0u);
  EXPECT_EQ(o->stats_file, "/tmp/stats.json");
  EXPECT_EQ(o->log_level, "debug");
}

TEST(Options, LiveOptionsStateTheWholeLiveSetAndKeepTheRest) {
  auto start = parse({"--control-fd", "3", "--secrets-file", "/x", "--dc", "2=10.0.0.1:443",
                      "--prefer-ipv6", "--fast-mode", "off", "--idle-timeout", "9s", "--mask",
                      "10.0.0.9:443", "--drain-timeout", "7s", "--max-connections", "12"});
  ASSERT_TRUE(start) << start.error().to_string();
  auto next = apply_live_options(
      *start, {"--dc", "2=10.0.0.2:8443", "--dc", "4=[fd00::4]:443", "--handshake-timeout", "3s"});
  ASSERT_TRUE(next) << next.error().to_string();
  EXPECT_EQ(next->dc_overrides, (std::vector<std::string>{"2=10.0.0.2:8443", "4=[fd00::4]:443"}));
  EXPECT_EQ(next->handshake_timeout_ms, 3'000u);
  // Live fields the message leaves out go back to their defaults ...
  EXPECT_FALSE(next->prefer_ipv6);
  EXPECT_TRUE(next->fast_mode);
  EXPECT_EQ(next->idle_timeout_ms, Options{}.idle_timeout_ms);
  EXPECT_FALSE(next->mask.global.has_value());
  // ... and everything that is not live stays as started.
  EXPECT_EQ(next->control_fd, 3);
  EXPECT_EQ(next->secrets_file, "/x");
  EXPECT_EQ(next->drain_timeout_ms, 7'000u);
  EXPECT_EQ(next->max_connections, 12u);
}

TEST(Options, LiveOptionsRefuseWhatIsNotLiveOrIsMalformed) {
  auto start = parse({"--control-fd", "3", "--secrets-file", "/x"});
  ASSERT_TRUE(start);
  for (std::vector<std::string_view> bad : {
           std::vector<std::string_view>{"--bind", "127.0.0.1:1"},
           {"--control-fd", "4"},
           {"--secret", kSimple},
           {"--replay-entries", "64"},
           {"--help"},
           {"--dc", "99999=1.2.3.4:1"},
           {"--dc"},
           {"--fast-mode", "maybe"},
           {"--mask", "not an endpoint"},
       }) {
    auto r = apply_live_options(*start, bad);
    EXPECT_FALSE(r) << bad.front();
    if (!r) {
      EXPECT_EQ(r.error().code, base::Errc::kBadInput);
    }
  }
  EXPECT_TRUE(is_live_flag("--dc"));
  EXPECT_FALSE(is_live_flag("--secrets-file"));
}

TEST(Options, HelpWinsOverMissingFlags) {
  auto o = parse({"--help"});
  ASSERT_TRUE(o);
  EXPECT_TRUE(o->help);
}

TEST(Options, ConfinementCheckNeedsNoOtherFlag) {
  auto o = parse({"--confinement-check"});
  ASSERT_TRUE(o);
  EXPECT_TRUE(o->confinement_check);
  EXPECT_FALSE(o->help);
  EXPECT_FALSE(parse({"--confinement-check=1"}));  // a switch, no value
}

TEST(Options, RejectsUnknownFlag) {
  auto o = parse({"--bind", "127.0.0.1:1", "--secret", kSimple, "--frobnicate"});
  ASSERT_FALSE(o);
  EXPECT_NE(o.error().context.find("--frobnicate"), std::string::npos);
}

TEST(Options, RejectsMissingValue) {
  auto o = parse({"--secret", kSimple, "--bind"});
  ASSERT_FALSE(o);
  EXPECT_NE(o.error().context.find("needs a value"), std::string::npos);
}

TEST(Options, RejectsBadSecretWithoutEchoingIt) {
  auto o = parse({"--bind", "127.0.0.1:1", "--secret", "zz0123456789abcdef"});
  ASSERT_FALSE(o);
  EXPECT_NE(o.error().context.find("--secret"), std::string::npos);
  EXPECT_EQ(o.error().context.find("zz0123456789abcdef"), std::string::npos);
}

TEST(Options, RequiresBindOrControlFd) {
  EXPECT_FALSE(parse({"--secret", kSimple}));
  EXPECT_TRUE(parse({"--secret", kSimple, "--control-fd", "3"}));
}

TEST(Options, RequiresSecretOrSecretsFile) {
  EXPECT_FALSE(parse({"--bind", "127.0.0.1:1"}));
  EXPECT_TRUE(parse({"--bind", "127.0.0.1:1", "--secrets-file", "/x"}));
}

TEST(Options, RejectsBadValues) {
  std::vector<std::vector<std::string_view>> bad = {
      {"--fast-mode", "maybe"},      {"--handshake-timeout", "-1"},   {"--idle-timeout", "abc"},
      {"--max-connections", "1e3"},  {"--dc", "x=127.0.0.1:1"},       {"--mask", "nohostport"},
      {"--allow", "carrier-pigeon"}, {"--log-level", "loud"},         {"--control-fd", "1"},
      {"--bind", "127.0.0.1"},       {"--mask-domain", "=1.2.3.4:5"}, {"--unknown-sni", "x"},
      {"--mask-domain-port", "-1"},
  };
  for (auto extra : bad) {
    std::vector<std::string_view> args = {"--bind", "127.0.0.1:1", "--secret", kSimple};
    args.insert(args.end(), extra.begin(), extra.end());
    EXPECT_FALSE(parse(args)) << extra[0] << " " << extra[1];
  }
}

TEST(Options, MiddleProxyFlags) {
  auto o = parse({"--bind", "127.0.0.1:0", "--secret", kSimple, "--ad-tag",
                  "0123456789ABCDEF0123456789abcdef", "--proxy-secret", "/tmp/ps", "--proxy-config",
                  "/tmp/pc", "--proxy-config-v6", "/tmp/pc6", "--middle-pool", "3", "--public-ip",
                  "203.0.113.7", "--middle-stall-timeout", "2.5"});
  ASSERT_TRUE(o) << o.error().to_string();
  ASSERT_TRUE(o->ad_tag.has_value());
  EXPECT_EQ((*o->ad_tag)[0], std::byte{0x01});
  EXPECT_EQ((*o->ad_tag)[5], std::byte{0xab});
  EXPECT_EQ((*o->ad_tag)[15], std::byte{0xef});
  EXPECT_EQ(o->proxy_secret_file, "/tmp/ps");
  EXPECT_EQ(o->proxy_config_file, "/tmp/pc");
  EXPECT_EQ(o->proxy_config_v6_file, "/tmp/pc6");
  EXPECT_EQ(o->middle_pool, 3u);
  EXPECT_EQ(o->public_ip, "203.0.113.7");
  EXPECT_EQ(o->middle_stall_ms, 2'500u);

  auto d = parse({"--bind", "127.0.0.1:0", "--secret", kSimple});
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->ad_tag.has_value());
  EXPECT_EQ(d->middle_pool, 2u);
  EXPECT_EQ(d->middle_stall_ms, 5'000u);
  EXPECT_TRUE(parse({"--bind", "127.0.0.1:0", "--secret", kSimple, "--public-ip", "2001:db8::1"}));
}

TEST(Options, MiddleProxyFlagErrors) {
  const std::vector<std::vector<std::string_view>> bad = {
      {"--ad-tag", "0123456789abcdef0123456789abcde"},   // 31 digits
      {"--ad-tag", "0123456789abcdef0123456789abcdeg"},  // not hex
      {"--ad-tag", "0123456789abcdef0123456789abcdef"},  // no proxy secret / config
      {"--ad-tag", "0123456789abcdef0123456789abcdef", "--proxy-secret", "/x"},
      {"--middle-pool", "0"},
      {"--middle-pool", "65"},
      {"--public-ip", "proxy.example"},
      {"--public-ip", "1.2.3.4:80"},
      {"--middle-stall-timeout", "100ms"},
  };
  for (const auto& extra : bad) {
    std::vector<std::string_view> args = {"--bind", "127.0.0.1:0", "--secret", kSimple};
    args.insert(args.end(), extra.begin(), extra.end());
    EXPECT_FALSE(parse(args)) << extra[0] << " " << extra[1];
  }
}

}  // namespace
}  // namespace mtw::worker

namespace mtw::worker {
namespace {

TEST(Options, OrphanTimeoutAndReattachFd) {
  auto o = parse_options(std::vector<std::string_view>{
      "--control-fd", "3", "--secret", kSimple, "--orphan-timeout", "90s", "--reattach-fd", "6"});
  ASSERT_TRUE(o) << o.error().to_string();
  EXPECT_EQ(o->orphan_timeout_ms, 90'000u);
  EXPECT_EQ(o->reattach_fd, 6);
  auto d = parse_options(std::vector<std::string_view>{"--control-fd", "3", "--secret", kSimple});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->orphan_timeout_ms, 0u);  // default: drain when the parent goes
  EXPECT_EQ(d->reattach_fd, -1);
}

TEST(Options, OrphanFlagsNeedWhatTheyWorkWith) {
  std::vector<std::vector<std::string_view>> bad = {
      {"--bind", "127.0.0.1:1", "--orphan-timeout", "5"},  // no controller to lose
      {"--control-fd", "3", "--reattach-fd", "6"},         // never accepted on
      {"--control-fd", "3", "--orphan-timeout", "0", "--reattach-fd", "6"},
      {"--control-fd", "3", "--orphan-timeout", "5", "--reattach-fd", "3"},  // same fd
      {"--control-fd", "3", "--orphan-timeout", "5", "--reattach-fd", "2"},  // out of range
  };
  for (auto args : bad) {
    args.insert(args.end(), {"--secret", kSimple});
    auto o = parse_options(args);
    EXPECT_FALSE(o) << args[0] << " " << args[2];
  }
}

}  // namespace
}  // namespace mtw::worker
