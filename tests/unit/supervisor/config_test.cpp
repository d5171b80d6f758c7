#include "supervisor/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <utility>

namespace mtw::supervisor {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::string_view kListener = "[[listener]]\nbind = \"0.0.0.0:443\"\n";
// Three distinct 16-byte keys; kKeyA again under the dd prefix.
constexpr std::string_view kKeyA = "0123456789abcdef0123456789abcdef";
constexpr std::string_view kKeyB = "fedcba9876543210fedcba9876543210";
constexpr std::string_view kKeyC = "00112233445566778899aabbccddeeff";

std::string user(std::string_view name, std::string_view secret, std::string_view extra = "") {
  return "[[user]]\nname = \"" + std::string(name) + "\"\nsecret = \"" + std::string(secret) +
         "\"\n" + std::string(extra);
}

// The error text of a config expected to be rejected.
std::string error_of(std::string_view text) {
  auto r = parse_config(text, "t.toml");
  if (r) return "<accepted>";
  EXPECT_EQ(r.error().code, base::Errc::kBadInput);
  return r.error().context;
}

std::int64_t utc(int y, unsigned m, unsigned d) {
  using namespace std::chrono;
  return sys_seconds(sys_days(year{y} / month{m} / day{d})).time_since_epoch().count();
}

TEST(Config, ParsesAFullFile) {
  const std::string text = R"(
[server]
state_dir = "/tmp/st"
run_dir = "/tmp/run"
log_level = "debug"
public_host = "proxy.example.org"

[[listener]]
bind = "127.0.0.1:8443"
protocols = ["tls", "secure"]

[[listener]]
bind = "[::1]:8443"

[mask]
address = "10.0.0.9:443"
discard_timeout_ms = 1000

[telegram]
dc = ["2=10.1.0.2:443", "-2=[fd00::2]:8888"]
prefer_ipv6 = true
fast_mode = false

[cells]
ipv4_pool = "10.99.0.0/24"
ipv6_prefix = "fd00:1::/56"
netns_dir = "/tmp/netns"
name_prefix = "t1"
uid_first = 300000
uid_count = 100
gid_first = 400000
worker_nofile = 1024
worker_memory_max = "32MiB"

[timeouts]
handshake_ms = 3000

[accounting]
sweep_interval_ms = 500
history_days = 500

[connections]
global_budget = 1000
hold_queue_length = 4
hold_timeout_ms = 2000

[defaults]
rate_down = "20mbit"
quota = "10GiB"
period = "weekly"
anchor_day = 3
throttle_rate = "2Mbit/s"
max_connections = 50
)" + user("alice", kKeyA, "expires = 2030-01-31\ncomment = \"phone\"\n");
  auto cfg = parse_config(text, "t.toml");
  ASSERT_TRUE(cfg) << cfg.error().context;
  EXPECT_EQ(cfg->server.state_dir, "/tmp/st");
  EXPECT_EQ(cfg->server.log_level, "debug");
  ASSERT_EQ(cfg->listeners.size(), 2u);
  EXPECT_EQ(cfg->listeners[0].bind, (proto::Endpoint{"127.0.0.1", 8443}));
  EXPECT_TRUE(cfg->listeners[0].protocols.fake_tls);
  EXPECT_FALSE(cfg->listeners[0].protocols.abridged);
  EXPECT_EQ(cfg->listeners[1].bind.host, "::1");
  EXPECT_EQ(cfg->listeners[1].protocols, proto::AllowedProtocols{});
  ASSERT_TRUE(cfg->mask.address.has_value());
  EXPECT_EQ(cfg->mask.address->port, 443);
  EXPECT_EQ(cfg->mask.discard_timeout_ms, 1000u);
  ASSERT_EQ(cfg->telegram.dc.size(), 2u);
  EXPECT_EQ(cfg->telegram.dc[1], (DcOverride{-2, {{"fd00::2", 8888}}}));
  EXPECT_TRUE(cfg->telegram.prefer_ipv6);
  EXPECT_FALSE(cfg->telegram.fast_mode);
  EXPECT_EQ(format_cidr(cfg->cells.ipv4_pool), "10.99.0.0/24");
  EXPECT_EQ(format_cidr(*cfg->cells.ipv6_prefix), "fd00:1::/56");
  EXPECT_EQ(cfg->cells.uid_first, 300000u);
  EXPECT_EQ(cfg->cells.gid_first, 400000u);
  EXPECT_EQ(cfg->cells.worker_memory_max_bytes, 32u << 20);
  EXPECT_EQ(cfg->timeouts.handshake_ms, 3000u);
  EXPECT_EQ(cfg->timeouts.dc_connect_ms, 10000u);  // default kept
  EXPECT_EQ(cfg->accounting.history_days, 500u);
  EXPECT_EQ(cfg->connections.global_budget, 1000u);
  EXPECT_EQ(cfg->defaults.rate_down_bps, 20'000'000u);
  EXPECT_EQ(cfg->defaults.rate_up_bps, 0u);
  EXPECT_EQ(cfg->defaults.quota_bytes, 10ull << 30);
  EXPECT_EQ(cfg->defaults.period, Period::kWeekly);
  EXPECT_EQ(cfg->defaults.throttle_bps, 2'000'000u);
  ASSERT_EQ(cfg->users.size(), 1u);
  EXPECT_EQ(cfg->users[0].name, "alice");
  EXPECT_EQ(cfg->users[0].comment, "phone");
  EXPECT_EQ(cfg->users[0].expires_at, utc(2030, 2, 1));  // through Jan 31
  EXPECT_EQ(cfg->users[0].secrets.size(), 1u);
}

TEST(Config, EmbeddedDefaultParses) {
  auto cfg = parse_config(default_config_text(), "default.toml");
  ASSERT_TRUE(cfg) << cfg.error().context;
  EXPECT_EQ(cfg->listeners.size(), 2u);
  EXPECT_EQ(cfg->listeners[1].bind.host, "::");
  for (const auto& l : cfg->listeners)  // fake TLS only: docs/configuration.md [[listener]]
    EXPECT_EQ(l.protocols, (proto::AllowedProtocols{false, false, false, true}));
  EXPECT_EQ(cfg->defaults.throttle_bps, 1'000'000u);
  EXPECT_EQ(cfg->accounting.history_days, 400u);
  EXPECT_TRUE(cfg->users.empty());
}

TEST(Config, BandwidthBudgetIsOffByDefaultAndTakesRates) {
  auto none = parse_config(std::string(kListener), "t.toml");
  ASSERT_TRUE(none) << none.error().context;
  EXPECT_EQ(none->bandwidth, BandwidthConfig{});
  auto cfg = parse_config(
      std::string(kListener) + "[bandwidth]\nup = \"50mbit\"\ndown = 900000000\n", "t.toml");
  ASSERT_TRUE(cfg) << cfg.error().context;
  EXPECT_EQ(cfg->bandwidth.up_bps, 50'000'000u);
  EXPECT_EQ(cfg->bandwidth.down_bps, 900'000'000u);
}

TEST(Config, BandwidthBudgetRefusesBadRatesWithTheirPlace) {
  EXPECT_THAT(error_of(std::string(kListener) + "[bandwidth]\nup = \"fast\"\n"),
              HasSubstr("t.toml:4:6"));
  EXPECT_THAT(error_of(std::string(kListener) + "[bandwidth]\ndown = 100\n"),
              HasSubstr("bandwidth.down must be at least"));
  EXPECT_THAT(error_of(std::string(kListener) + "[bandwidth]\nweights = 1\n"),
              HasSubstr("unknown key"));
}

TEST(Config, MaskingIsOnByDefaultWithTheDomainOn443) {
  for (std::string_view text : {kListener, default_config_text()}) {
    auto cfg = parse_config(text, "t.toml");
    ASSERT_TRUE(cfg) << cfg.error().context;
    EXPECT_TRUE(cfg->mask.enabled);
    EXPECT_FALSE(cfg->mask.address);
    EXPECT_EQ(cfg->mask.unknown_sni, proto::UnknownSniAction::kMask);
    const auto routes = mask_routes(*cfg);
    EXPECT_TRUE(routes.domain_default);
    EXPECT_EQ(routes.default_port, 443);
    EXPECT_FALSE(routes.global);
    EXPECT_EQ(mask_flags(*cfg, true),
              (std::vector<std::string>{"--mask-domain-port", "443", "--unknown-sni", "mask",
                                        "--mask-connect-timeout", "5000ms", "--mask-mirror-after",
                                        "250ms"}));
  }
}

TEST(Config, MaskOverridesGlobalPerListenerAndPerDomain) {
  const std::string text = R"([[listener]]
bind = "0.0.0.0:443"
mask = "10.0.0.7:443"

[[listener]]
bind = "0.0.0.0:8443"
mask = ""

[mask]
address = "10.0.0.1:8443"
unknown_sni = "drop"
connect_timeout_ms = 1500

[mask.domains]
"WWW.Example.com" = "10.0.0.2:443"
)";
  auto cfg = parse_config(text, "t.toml");
  ASSERT_TRUE(cfg) << cfg.error().context;
  ASSERT_EQ(cfg->listeners.size(), 2u);
  EXPECT_EQ(cfg->listeners[0].mask, (proto::Endpoint{"10.0.0.7", 443}));
  EXPECT_FALSE(cfg->listeners[1].mask);
  EXPECT_EQ(cfg->mask.address, (proto::Endpoint{"10.0.0.1", 8443}));
  ASSERT_EQ(cfg->mask.domains.size(), 1u);
  EXPECT_EQ(cfg->mask.domains[0].first, "www.example.com");
  EXPECT_EQ(cfg->mask.unknown_sni, proto::UnknownSniAction::kDrop);
  EXPECT_EQ(mask_flags(*cfg, true),
            (std::vector<std::string>{
                "--mask", "10.0.0.1:8443", "--mask-domain", "www.example.com=10.0.0.2:443",
                "--mask-listener", "0=10.0.0.7:443", "--mask-domain-port", "443", "--unknown-sni",
                "drop", "--mask-connect-timeout", "1500ms", "--mask-mirror-after", "250ms"}));
  // Without the listeners' routes.
  EXPECT_EQ(mask_flags(*cfg, false).size(), 12u);
}

TEST(Config, MaskProbeKeys) {
  auto def = parse_config(kListener, "t.toml");
  ASSERT_TRUE(def);
  EXPECT_TRUE(def->mask.probe);
  EXPECT_EQ(def->mask.probe_interval_s, 86'400u);  // daily
  EXPECT_EQ(def->mask.probe_jitter_s, 3'600u);
  EXPECT_EQ(def->mask.probe_handshakes, 16u);
  auto cfg = parse_config(std::string(kListener) +
                              "[mask]\nprobe = false\nprobe_interval_s = 3600\n"
                              "probe_jitter_s = 0\nprobe_handshakes = 10\n",
                          "t.toml");
  ASSERT_TRUE(cfg) << cfg.error().context;
  EXPECT_FALSE(cfg->mask.probe);
  EXPECT_EQ(cfg->mask.probe_interval_s, 3600u);
  EXPECT_EQ(cfg->mask.probe_jitter_s, 0u);
  EXPECT_EQ(cfg->mask.probe_handshakes, 10u);
  EXPECT_THAT(error_of(std::string(kListener) + "[mask]\nprobe_interval_s = 10\n"),
              HasSubstr("probe_interval_s"));
  EXPECT_THAT(error_of(std::string(kListener) + "[mask]\nprobe_handshakes = 0\n"),
              HasSubstr("probe_handshakes"));
}

TEST(Config, MaskDisabledGivesNoTargetAtAll) {
  auto cfg = parse_config(
      std::string(kListener) + "[mask]\nenabled = false\naddress = \"10.0.0.1:1\"\n", "t.toml");
  ASSERT_TRUE(cfg) << cfg.error().context;
  EXPECT_EQ(mask_routes(*cfg), proto::MaskRoutes{});
}

TEST(Config, RejectsBadMaskKeys) {
  const std::string l(kListener);
  EXPECT_THAT(error_of(l + "[mask]\nunknown_sni = \"close\"\n"), HasSubstr("\"mask\" or \"drop\""));
  EXPECT_THAT(error_of(l + "[mask.domains]\n\"a.example\" = \"nohost\"\n"),
              HasSubstr("mask.domains \"a.example\""));
  EXPECT_THAT(error_of(l + "[mask.domains]\n\"a.example\" = 5\n"), HasSubstr("HOST:PORT"));
  EXPECT_THAT(
      error_of(l +
               "[mask.domains]\n\"a.example\" = \"1.2.3.4:1\"\n\"A.example\" = \"1.2.3.4:2\"\n"),
      HasSubstr("given twice"));
  EXPECT_THAT(error_of(l + "[mask]\ndomains = 3\n"), HasSubstr("must be a table"));
  EXPECT_THAT(error_of("[[listener]]\nbind = \"0.0.0.0:443\"\nmask = \"x\"\n"),
              HasSubstr("t.toml:3:"));
}

TEST(Config, SecretsReadableByOthersOnlyWithUsersAndTheOtherReadBit) {
  auto with_user = parse_config(std::string(kListener) + user("a", kKeyA), "t.toml");
  auto without = parse_config(kListener, "t.toml");
  ASSERT_TRUE(with_user && without);
  EXPECT_TRUE(secrets_readable_by_others(*with_user, 0100644));
  EXPECT_TRUE(secrets_readable_by_others(*with_user, 0604));
  EXPECT_FALSE(secrets_readable_by_others(*with_user, 0100640));
  EXPECT_FALSE(secrets_readable_by_others(*with_user, 0600));
  EXPECT_FALSE(secrets_readable_by_others(*without, 0100644));  // nothing secret in it
}

TEST(Config, MinimalFileGetsDocumentedDefaults) {
  auto cfg = parse_config(kListener, "t.toml");
  ASSERT_TRUE(cfg) << cfg.error().context;
  EXPECT_EQ(cfg->server.state_dir, "/var/lib/mtwarden");
  EXPECT_EQ(format_cidr(cfg->cells.ipv4_pool), "10.200.0.0/16");
  EXPECT_EQ(cfg->defaults, Limits{});
}

TEST(Config, SupervisorKeysParseAndDefault) {
  auto def = parse_config(kListener, "t.toml");
  ASSERT_TRUE(def) << def.error().context;
  EXPECT_TRUE(def->server.create_first_user);
  EXPECT_EQ(def->server.first_user_domain, "www.google.com");
  EXPECT_TRUE(def->cells.nat);
  EXPECT_EQ(def->connections.unique_ip_window_s, 300u);
  const std::string text =
      std::string(kListener) +
      "[server]\ncreate_first_user = false\nfirst_user_domain = \"a.example\"\n"
      "[cells]\nnat = false\n[connections]\nunique_ip_window_s = 60\n";
  auto cfg = parse_config(text, "t.toml");
  ASSERT_TRUE(cfg) << cfg.error().context;
  EXPECT_FALSE(cfg->server.create_first_user);
  EXPECT_EQ(cfg->server.first_user_domain, "a.example");
  EXPECT_FALSE(cfg->cells.nat);
  EXPECT_EQ(cfg->connections.unique_ip_window_s, 60u);
  EXPECT_THAT(error_of(std::string(kListener) + "[connections]\nunique_ip_window_s = 0\n"),
              HasSubstr("t.toml:"));
  EXPECT_THAT(error_of(std::string(kListener) + "[cells]\nnat = \"yes\"\n"), HasSubstr("nat"));
}

TEST(Config, MiddleDefaultsToTelegramsSourcesAndNoTag) {
  auto cfg = parse_config(kListener, "t.toml");
  ASSERT_TRUE(cfg) << cfg.error().context;
  const MiddleConfig& m = cfg->middle;
  EXPECT_FALSE(m.ad_tag.has_value());
  EXPECT_EQ(m.sources[0].where, "https://core.telegram.org/getProxySecret");
  EXPECT_EQ(m.sources[1].where, "https://core.telegram.org/getProxyConfig");
  EXPECT_EQ(m.sources[2].where, "https://core.telegram.org/getProxyConfigV6");
  EXPECT_EQ(m.refresh_interval_s, 86'400u);
  EXPECT_TRUE(m.fallback);
  EXPECT_FALSE(cfg->listeners[0].ad_tag.has_value());
}

TEST(Config, MiddleTagsAndSourcesParse) {
  const std::string text =
      "[[listener]]\nbind = \"0.0.0.0:443\"\nad_tag = \"11111111111111111111111111111111\"\n"
      "[middle]\nad_tag = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"\nproxy_secret = "
      "\"/etc/mtw/secret\"\n"
      "proxy_config = \"http://127.0.0.1:8080/c\"\nproxy_config_v6 = \"\"\n"
      "refresh_interval_s = 3600\npool = 4\nstall_timeout_ms = 2000\npublic_ip = \"203.0.113.7\"\n"
      "fallback = false\n" +
      user("ann", kKeyA, "ad_tag = \"22222222222222222222222222222222\"\n");
  auto cfg = parse_config(text, "t.toml");
  ASSERT_TRUE(cfg) << cfg.error().context;
  const MiddleConfig& m = cfg->middle;
  ASSERT_TRUE(m.ad_tag.has_value());
  EXPECT_EQ(format_ad_tag(*m.ad_tag), "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  EXPECT_EQ(m.sources[0].type, MaterialSource::Type::kFile);
  EXPECT_EQ(m.sources[1].type, MaterialSource::Type::kUrl);
  EXPECT_EQ(m.sources[2].type, MaterialSource::Type::kNone);
  EXPECT_EQ(m.refresh_interval_s, 3600u);
  EXPECT_EQ(m.pool, 4u);
  EXPECT_EQ(m.stall_timeout_ms, 2000u);
  EXPECT_EQ(m.public_ip, "203.0.113.7");
  EXPECT_FALSE(m.fallback);
  ASSERT_TRUE(cfg->listeners[0].ad_tag.has_value());
  EXPECT_EQ(format_ad_tag(*cfg->listeners[0].ad_tag), "11111111111111111111111111111111");
  ASSERT_TRUE(cfg->users[0].ad_tag.has_value());
  EXPECT_EQ(format_ad_tag(*cfg->users[0].ad_tag), "22222222222222222222222222222222");
}

TEST(Config, MiddleRejectsBadTagsAndSources) {
  const std::string l(kListener);
  EXPECT_THAT(error_of(l + "[middle]\nad_tag = \"abc\"\n"),
              HasSubstr("middle.ad_tag must be 32 hex digits"));
  EXPECT_THAT(error_of(l + user("ann", kKeyA, "ad_tag = \"zz\"\n")),
              HasSubstr("user.ad_tag must be 32 hex digits"));
  EXPECT_THAT(error_of(l + "[middle]\nproxy_secret = \"secret.bin\"\n"),
              HasSubstr("middle.proxy_secret: want an http:// or https:// URL or an absolute"));
  EXPECT_THAT(error_of(l + "[middle]\nproxy_config = \"\"\n"),
              HasSubstr("middle.proxy_config must name a URL or a file"));
  EXPECT_THAT(error_of(l + "[middle]\npublic_ip = \"example.com\"\n"), HasSubstr("public_ip"));
  EXPECT_THAT(error_of(l + "[middle]\npool = 0\n"), HasSubstr("pool"));
  EXPECT_THAT(error_of(l + "[middle]\nrefresh_interval_s = 5\n"), HasSubstr("refresh_interval_s"));
  EXPECT_THAT(error_of(l + "[middle]\nad_tags = \"\"\n"), HasSubstr("ad_tags"));
}

TEST(Config, GateAdmissionKeysParseValidateAndDefault) {
  auto def = parse_config(kListener, "t.toml");
  ASSERT_TRUE(def) << def.error().context;
  EXPECT_EQ(def->connections.admission, GateAdmissionConfig{});
  EXPECT_EQ(def->connections.admission.source_handshakes, 128u);  // a burst of 50 fits
  EXPECT_EQ(def->connections.admission.ipv6_source_prefix, 64u);
  const std::string text = std::string(kListener) +
                           "[connections]\nsource_handshakes = 16\nsubnet_handshakes = 0\n"
                           "ipv6_source_prefix = 56\nipv6_subnet_prefix = 40\n"
                           "ipv4_subnet_prefix = 16\nsilent_timeout_ms = 1500\n";
  auto cfg = parse_config(text, "t.toml");
  ASSERT_TRUE(cfg) << cfg.error().context;
  const auto& a = cfg->connections.admission;
  EXPECT_EQ(a.source_handshakes, 16u);
  EXPECT_EQ(a.subnet_handshakes, 0u);
  EXPECT_EQ(a.ipv6_source_prefix, 56u);
  EXPECT_EQ(a.ipv6_subnet_prefix, 40u);
  EXPECT_EQ(a.ipv4_subnet_prefix, 16u);
  EXPECT_EQ(a.silent_timeout_ms, 1500u);
  for (const char* bad : {"ipv6_source_prefix = 0", "ipv6_source_prefix = 129",
                          "ipv4_subnet_prefix = 33", "silent_timeout_ms = 0"}) {
    EXPECT_THAT(error_of(std::string(kListener) + "[connections]\n" + bad + "\n"),
                HasSubstr("t.toml:"))
        << bad;
  }
}

TEST(Config, UserOverridesWinAndUnsetKeysInherit) {
  const std::string text =
      std::string(kListener) + "[defaults]\nquota = \"10GiB\"\nrate_down = \"20mbit\"\n" +
      user("a", kKeyA, "quota = \"50GiB\"\nperiod = \"daily\"\n") + user("b", kKeyB);
  auto cfg = parse_config(text, "t.toml");
  ASSERT_TRUE(cfg) << cfg.error().context;
  const Limits a = cfg->limits_for(*cfg->find_user("a"));
  const Limits b = cfg->limits_for(*cfg->find_user("b"));
  EXPECT_EQ(a.quota_bytes, 50ull << 30);
  EXPECT_EQ(a.period, Period::kDaily);
  EXPECT_EQ(a.rate_down_bps, 20'000'000u);
  EXPECT_EQ(b.quota_bytes, 10ull << 30);
  EXPECT_EQ(b.period, Period::kMonthly);
}

TEST(Config, UnlimitedAndIntegerFormsAreAccepted) {
  const std::string text =
      std::string(kListener) +
      "[defaults]\nquota = 1000000\nrate_up = \"unlimited\"\nrate_down = 64000\n";
  auto cfg = parse_config(text, "t.toml");
  ASSERT_TRUE(cfg) << cfg.error().context;
  EXPECT_EQ(cfg->defaults.quota_bytes, 1'000'000u);
  EXPECT_EQ(cfg->defaults.rate_up_bps, 0u);
  EXPECT_EQ(cfg->defaults.rate_down_bps, 64'000u);
}

TEST(Config, UnknownKeyIsAnErrorAtItsPosition) {
  EXPECT_THAT(error_of(std::string(kListener) + "[server]\nstate_dri = \"/x\"\n"),
              HasSubstr("t.toml:4:1: unknown key \"server.state_dri\""));
}

TEST(Config, UnknownKeyInsideUserIsAnError) {
  EXPECT_THAT(error_of(std::string(kListener) + user("a", kKeyA, "qouta = \"1GiB\"\n")),
              HasSubstr("t.toml:6:1: unknown key \"user.qouta\""));
}

TEST(Config, UnknownSectionIsAnError) {
  EXPECT_THAT(error_of(std::string(kListener) + "[limits]\nx = 1\n"),
              HasSubstr("t.toml:3:2: unknown section or key \"limits\""));
}

TEST(Config, SyntaxErrorNamesLineAndColumn) {
  EXPECT_THAT(error_of("[server]\nlog_level = \"info\nx"), HasSubstr("t.toml:2:"));
}

TEST(Config, OutOfRangeValueNamesKeyRangeAndPosition) {
  EXPECT_THAT(error_of(std::string(kListener) + "[accounting]\nhistory_days = 30\n"),
              HasSubstr("t.toml:4:16: accounting.history_days = 30 is out of range 400..36500"));
}

TEST(Config, WrongTypeIsAnError) {
  EXPECT_THAT(error_of(std::string(kListener) + "[telegram]\nfast_mode = \"yes\"\n"),
              HasSubstr("t.toml:4:13: telegram.fast_mode must be true or false"));
}

TEST(Config, ListenerWrittenAsPlainTableIsAnError) {
  EXPECT_THAT(error_of("[listener]\nbind = \"0.0.0.0:443\"\n"),
              HasSubstr("must be an array of tables: write [[listener]]"));
}

TEST(Config, MissingListenerIsAnError) {
  EXPECT_THAT(error_of("[server]\n"), HasSubstr("t.toml:1:1: no [[listener]]"));
}

TEST(Config, BadSizeTextIsAnErrorWithReason) {
  EXPECT_THAT(error_of(std::string(kListener) + "[defaults]\nquota = \"10 GiBs\"\n"),
              HasSubstr("t.toml:4:9: defaults.quota: size: unknown unit"));
}

TEST(Config, UnknownPeriodIsAnError) {
  EXPECT_THAT(error_of(std::string(kListener) + "[defaults]\nperiod = \"yearly\"\n"),
              HasSubstr("t.toml:4:10: defaults.period: period must be daily, weekly"));
}

TEST(Config, BandwidthWeightDefaultsToOneAndUsersMayOverrideIt) {
  auto plain = parse_config(std::string(kListener) + user("a", kKeyA), "t.toml");
  ASSERT_TRUE(plain) << plain.error().context;
  EXPECT_EQ(plain->defaults.bandwidth_weight, 1u);
  EXPECT_EQ(plain->users[0].overrides.bandwidth_weight, std::nullopt);
  auto cfg = parse_config(std::string(kListener) + "[defaults]\nbandwidth_weight = 2\n" +
                              user("a", kKeyA, "bandwidth_weight = 1000\n") + user("b", kKeyB),
                          "t.toml");
  ASSERT_TRUE(cfg) << cfg.error().context;
  EXPECT_EQ(cfg->defaults.bandwidth_weight, 2u);
  EXPECT_EQ(cfg->users[0].overrides.bandwidth_weight, std::optional<std::uint32_t>(1'000));
  EXPECT_EQ(resolve_limits(cfg->defaults, cfg->users[1].overrides).bandwidth_weight, 2u);
}

TEST(Config, BandwidthWeightOutOfRangeNamesKeyAndPosition) {
  EXPECT_THAT(error_of(std::string(kListener) + "[defaults]\nbandwidth_weight = 0\n"),
              HasSubstr("t.toml:4:20: defaults.bandwidth_weight = 0 is out of range 1..1000"));
  EXPECT_THAT(error_of(std::string(kListener) + user("a", kKeyA, "bandwidth_weight = 1001\n")),
              HasSubstr("t.toml:6:20: user.bandwidth_weight = 1001 is out of range 1..1000"));
  EXPECT_THAT(error_of(std::string(kListener) + user("a", kKeyA, "bandwidth_weight = \"3\"\n")),
              HasSubstr("t.toml:6:20: user.bandwidth_weight must be"));
}

TEST(Config, WeeklyAnchorAboveSevenIsAnError) {
  EXPECT_THAT(
      error_of(std::string(kListener) + user("a", kKeyA, "period = \"weekly\"\nanchor_day = 9\n")),
      HasSubstr("t.toml:3:1: user \"a\": a weekly period's anchor_day is an ISO weekday"));
}

TEST(Config, PoolOverlappingLoopbackIsAnError) {
  for (const char* pool : {"127.0.0.0/8", "127.200.0.0/16", "64.0.0.0/2"})
    EXPECT_THAT(error_of(std::string(kListener) + "[cells]\nipv4_pool = \"" + pool + "\"\n"),
                HasSubstr("overlaps the loopback network 127.0.0.0/8"))
        << pool;
  EXPECT_TRUE(
      parse_config(std::string(kListener) + "[cells]\nipv4_pool = \"128.0.0.0/16\"\n", "t.toml"));
}

TEST(Config, ApiPortOfAListenerIsAnError) {
  EXPECT_THAT(
      error_of(std::string(kListener) + "[api]\ntcp = \"127.0.0.1:443\"\n"),
      HasSubstr("api.tcp 127.0.0.1:443 uses the port of listener 0.0.0.0:443 at t.toml:1:1"));
  EXPECT_THAT(
      error_of("[[listener]]\nbind = \"127.0.0.1:8443\"\n[api]\ntcp = \"127.0.0.1:8443\"\n"),
      HasSubstr("uses the port of listener 127.0.0.1:8443"));
  // Another address of the same family on another port, or [::1] beside 0.0.0.0: fine.
  EXPECT_TRUE(parse_config(std::string(kListener) + "[api]\ntcp = \"127.0.0.1:9443\"\n", "t.toml"));
  EXPECT_TRUE(parse_config(std::string(kListener) + "[api]\ntcp = \"[::1]:443\"\n", "t.toml"));
}

TEST(Config, UnknownSocketGroupIsAnError) {
  EXPECT_THAT(error_of(std::string(kListener) + "[api]\nsocket_group = \"no-such-group-mtw\"\n"),
              HasSubstr("api.socket_group \"no-such-group-mtw\": no such group"));
  EXPECT_TRUE(parse_config(std::string(kListener) + "[api]\nsocket_group = \"root\"\n", "t.toml"));
}

TEST(Config, ApiTcpHostNameIsAnError) {
  EXPECT_THAT(error_of(std::string(kListener) + "[api]\ntcp = \"localhost:9443\"\n"),
              HasSubstr("api.tcp host \"localhost\" must be a literal IPv4 or IPv6 address"));
}

TEST(Config, UserNamesAreASafeSet) {
  for (const char* bad : {".", "..", ".hidden", "-rf", "a b", "a/b", "a\x01", ""})
    EXPECT_FALSE(valid_user_name(bad)) << bad;
  EXPECT_FALSE(valid_user_name(std::string(65, 'a')));
  for (const char* good : {"a", "a.b", "a..b", "a-", "_x", "0", "Z_9.-"})
    EXPECT_TRUE(valid_user_name(good)) << good;
  EXPECT_THAT(error_of(std::string(kListener) + user("..", kKeyA)),
              HasSubstr("user.name \"..\" must be 1..64 of [A-Za-z0-9_.-], not starting with"));
}

TEST(Config, DuplicateUserNamesNameBothPlaces) {
  EXPECT_THAT(error_of(std::string(kListener) + user("a", kKeyA) + user("a", kKeyB)),
              HasSubstr("t.toml:6:1: duplicate user name \"a\" (first at t.toml:3:1)"));
}

TEST(Config, SameKeyUnderAnotherPrefixIsADuplicateSecret) {
  const std::string dd = "dd" + std::string(kKeyA);
  EXPECT_THAT(error_of(std::string(kListener) + user("a", kKeyA) + user("b", dd)),
              HasSubstr("user \"b\" reuses the secret key of user \"a\" (at t.toml:3:1)"));
}

TEST(Config, BadSecretIsAnErrorThatDoesNotEchoTheSecret) {
  const std::string text = std::string(kListener) + user("a", "0123456789abcdefXYZ");
  const std::string err = error_of(text);
  EXPECT_THAT(err, HasSubstr("t.toml:5:10: user \"a\" secret:"));
  EXPECT_THAT(err, Not(HasSubstr("0123456789abcdefXYZ")));
}

TEST(Config, UserWithoutSecretIsAnError) {
  EXPECT_THAT(error_of(std::string(kListener) + "[[user]]\nname = \"a\"\n"),
              HasSubstr("t.toml:3:1: user \"a\" needs a secret"));
}

TEST(Config, SeveralSecretsPerUser) {
  const std::string text = std::string(kListener) + "[[user]]\nname = \"a\"\nsecrets = [\"" +
                           std::string(kKeyA) + "\", \"dd" + std::string(kKeyB) + "\"]\n";
  auto cfg = parse_config(text, "t.toml");
  ASSERT_TRUE(cfg) << cfg.error().context;
  EXPECT_EQ(cfg->users[0].secrets.size(), 2u);
  EXPECT_EQ(cfg->users[0].secrets[1].kind, proto::SecretKind::kSecure);
}

TEST(Config, OverlappingListenersAreAnError) {
  EXPECT_THAT(error_of(std::string(kListener) + "[[listener]]\nbind = \"127.0.0.1:443\"\n"),
              HasSubstr("t.toml:3:1: listener 127.0.0.1:443 overlaps listener 0.0.0.0 port 443"));
}

TEST(Config, Ipv6WildcardDoesNotOverlapIpv4Wildcard) {
  auto cfg = parse_config(std::string(kListener) + "[[listener]]\nbind = \"[::]:443\"\n", "t.toml");
  EXPECT_TRUE(cfg) << cfg.error().context;
}

TEST(Config, ListenerNeedsLiteralAddress) {
  EXPECT_THAT(error_of("[[listener]]\nbind = \"localhost:443\"\n"),
              HasSubstr("must be a literal IPv4 or IPv6 address"));
}

TEST(Config, UidRangeTooSmallForUsersIsAnError) {
  const std::string text =
      std::string(kListener) + "[cells]\nuid_count = 2\n" + user("a", kKeyA) + user("b", kKeyB);
  EXPECT_THAT(error_of(text), HasSubstr("t.toml:3:1: cells uid range 200000..200001 holds 1 "
                                        "workers (plus the gate) but 2 users are configured"));
}

TEST(Config, Ipv4PoolTooSmallForUsersIsAnError) {
  const std::string text = std::string(kListener) + "[cells]\nipv4_pool = \"10.0.0.0/29\"\n" +
                           user("a", kKeyA) + user("b", kKeyB) + user("c", kKeyC);
  EXPECT_THAT(error_of(text),
              HasSubstr("cells.ipv4_pool 10.0.0.0/29 holds 2 cells but 3 users are configured"));
}

TEST(Config, PoolWithHostBitsIsAnError) {
  EXPECT_THAT(error_of(std::string(kListener) + "[cells]\nipv4_pool = \"10.0.0.1/24\"\n"),
              HasSubstr("t.toml:4:13: cells.ipv4_pool: \"10.0.0.1/24\" has host bits set"));
}

TEST(Config, NonUlaIpv6PrefixIsAnError) {
  EXPECT_THAT(error_of(std::string(kListener) + "[cells]\nipv6_prefix = \"2001:db8::/48\"\n"),
              HasSubstr("must be a unique local (fc00::/7) prefix"));
}

TEST(Config, EmptyIpv6PrefixTurnsCellIpv6Off) {
  auto cfg = parse_config(std::string(kListener) + "[cells]\nipv6_prefix = \"\"\n", "t.toml");
  ASSERT_TRUE(cfg) << cfg.error().context;
  EXPECT_FALSE(cfg->cells.ipv6_prefix.has_value());
  EXPECT_EQ(ipv6_cell_capacity(cfg->cells), 0u);
}

TEST(Config, ExpiryWithOffsetIsExact) {
  auto cfg = parse_config(
      std::string(kListener) + user("a", kKeyA, "expires = 2030-01-31T12:00:00+02:00\n"), "t.toml");
  ASSERT_TRUE(cfg) << cfg.error().context;
  EXPECT_EQ(cfg->users[0].expires_at, utc(2030, 1, 31) + 10 * 3600);
}

TEST(Config, ExpiryWithoutOffsetIsAnError) {
  EXPECT_THAT(
      error_of(std::string(kListener) + user("a", kKeyA, "expires = 2030-01-31T12:00:00\n")),
      HasSubstr("t.toml:6:11: user.expires: a date-time needs an offset"));
}

TEST(Config, BadDcOverrideIsAnError) {
  EXPECT_THAT(error_of(std::string(kListener) + "[telegram]\ndc = [\"x=1.2.3.4:443\"]\n"),
              HasSubstr("t.toml:4:7: telegram.dc: \"x\" is not a DC number"));
}

TEST(Config, DcOverrideTakesSeveralAddressesCommaSeparated) {
  auto cfg = parse_config(std::string(kListener) +
                              "[telegram]\ndc = [\"2=10.0.0.1:443,[fd00::2]:8443\"]\n"
                              "prefer_ipv6 = true\nfast_mode = false\n",
                          "t.toml");
  ASSERT_TRUE(cfg) << cfg.error().context;
  ASSERT_EQ(cfg->telegram.dc.size(), 1u);
  EXPECT_EQ(cfg->telegram.dc[0], (DcOverride{2, {{"10.0.0.1", 443}, {"fd00::2", 8443}}}));
  // The worker gets the same list in one --dc, and the live flags are all
  // live in the worker's sense (worker/options.h, is_live_flag).
  const auto live = worker_live_flags(*cfg);
  const auto at = std::find(live.begin(), live.end(), "--dc");
  ASSERT_NE(at, live.end());
  EXPECT_EQ(*(at + 1), "2=10.0.0.1:443,[fd00::2]:8443");
  EXPECT_NE(std::find(live.begin(), live.end(), "--prefer-ipv6"), live.end());
  const auto fast = std::find(live.begin(), live.end(), "--fast-mode");
  ASSERT_NE(fast, live.end());
  EXPECT_EQ(*(fast + 1), "off");
  EXPECT_THAT(error_of(std::string(kListener) + "[telegram]\ndc = [\"2=10.0.0.1:443,\"]\n"),
              HasSubstr("t.toml:4:7: telegram.dc: "));
}

TEST(Config, FlightSegmentReachesTheWorkersLiveFlags) {
  auto flag_value = [](const Config& c) {
    const auto live = worker_live_flags(c);
    const auto at = std::find(live.begin(), live.end(), "--flight-segment");
    return at == live.end() ? std::string("absent") : *(at + 1);
  };
  auto off = parse_config(std::string(kListener), "t.toml");
  ASSERT_TRUE(off) << off.error().context;
  EXPECT_EQ(off->mask.flight_segment_bytes, 0u);
  EXPECT_EQ(flag_value(*off), "0");
  auto on = parse_config(std::string(kListener) + "[mask]\nflight_segment_bytes = 536\n", "t.toml");
  ASSERT_TRUE(on) << on.error().context;
  EXPECT_EQ(flag_value(*on), "536");
  // Masking off: no answer to shape either way.
  auto masking_off = parse_config(
      std::string(kListener) + "[mask]\nenabled = false\nflight_segment_bytes = 536\n", "t.toml");
  ASSERT_TRUE(masking_off) << masking_off.error().context;
  EXPECT_EQ(flag_value(*masking_off), "0");
  EXPECT_THAT(error_of(std::string(kListener) + "[mask]\nflight_segment_bytes = 10\n"),
              HasSubstr("mask.flight_segment_bytes must be 0 or 64..1400"));
  EXPECT_THAT(error_of(std::string(kListener) + "[mask]\nflight_segment_bytes = 9000\n"),
              HasSubstr("flight_segment_bytes"));
}

TEST(Config, ReportsEveryProblemAtOnce) {
  const std::string err =
      error_of(std::string(kListener) + "[server]\nlog_level = \"loud\"\ncolour = true\n");
  EXPECT_THAT(err, HasSubstr("t.toml:4:13: server.log_level must be one of"));
  EXPECT_THAT(err, HasSubstr("t.toml:5:1: unknown key \"server.colour\""));
}

TEST(Config, RelativeStateDirIsAnErrorAtTheValue) {
  EXPECT_THAT(error_of(std::string(kListener) + "[server]\nstate_dir = \"var/lib\"\n"),
              HasSubstr("t.toml:4:13: server.state_dir must be an absolute path"));
}

TEST(Config, LoadReadsAFileAndNamesItInErrors) {
  const std::string path = ::testing::TempDir() + "/mtw-config-test.toml";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("[[listener]]\nbind = \"0.0.0.0:443\"\n[mask]\nadress = \"x:1\"\n", f);
    std::fclose(f);
  }
  auto r = load_config(path);
  std::remove(path.c_str());
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().context, HasSubstr(path + ":4:1: unknown key \"mask.adress\""));
}

TEST(Config, LoadReportsAMissingFileWithErrno) {
  auto r = load_config("/nonexistent/mtwarden.toml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, base::Errc::kSyscall);
  EXPECT_EQ(r.error().sys_errno, ENOENT);
}

TEST(Config, StoreDefaultsToSqliteUnderTheHostname) {
  auto cfg = parse_config(kListener, "t.toml");
  ASSERT_TRUE(cfg) << cfg.error().context;
  EXPECT_EQ(cfg->store.backend, StoreEngine::kSqlite);
  EXPECT_EQ(cfg->store.host_name, "");  // the store asks gethostname
  EXPECT_TRUE(check_host_name(default_host_name()));
}

TEST(Config, StorePostgresqlKeys) {
  auto cfg = parse_config(std::string(kListener) +
                              "[store]\nbackend = \"postgresql\"\n"
                              "postgresql = \"host=db.example dbname=mtw user=mtw "
                              "sslmode=verify-full\"\npassword_file = \"/etc/mtwarden/db.pw\"\n"
                              "host_name = \"fra-1\"\n",
                          "t.toml");
  ASSERT_TRUE(cfg) << cfg.error().context;
  EXPECT_EQ(cfg->store.backend, StoreEngine::kPostgresql);
  EXPECT_EQ(cfg->store.postgresql, "host=db.example dbname=mtw user=mtw sslmode=verify-full");
  EXPECT_EQ(cfg->store.password_file, "/etc/mtwarden/db.pw");
  EXPECT_EQ(cfg->store.host_name, "fra-1");
}

TEST(Config, StoreBadInputIsRefusedAtLoad) {
  const std::string pg = std::string(kListener) + "[store]\nbackend = \"postgresql\"\n";
  EXPECT_THAT(error_of(std::string(kListener) + "[store]\nbackend = \"mysql\"\n"),
              HasSubstr("store.backend must be \"sqlite\" or \"postgresql\""));
  EXPECT_THAT(error_of(pg), HasSubstr("needs store.postgresql"));
  EXPECT_THAT(error_of(pg + "postgresql = \"host=x dbname='open\"\n"),
              HasSubstr("store.postgresql: bad connection string"));
  EXPECT_THAT(error_of(pg + "postgresql = \"host=x nosuchkey=1\"\n"),
              HasSubstr("store.postgresql: bad connection string"));
  const std::string inline_pw = error_of(pg + "postgresql = \"host=x password=hunter2\"\n");
  EXPECT_THAT(inline_pw, HasSubstr("put it in password_file"));
  EXPECT_THAT(inline_pw, Not(HasSubstr("hunter2")));
  EXPECT_THAT(error_of(pg + "postgresql = \"host=x\"\npassword_file = \"db.pw\"\n"),
              HasSubstr("store.password_file must be an absolute path"));
  EXPECT_THAT(error_of(pg + "postgresql = \"host=x\"\nhost_name = \"a b\"\n"),
              HasSubstr("store.host_name: a host name has only"));
  EXPECT_THAT(error_of(std::string(kListener) + "[store]\npostgresql = \"host=x\"\n"),
              HasSubstr("need store.backend = \"postgresql\""));
  EXPECT_THAT(error_of(std::string(kListener) + "[store]\nbackend = \"sqlite\"\nport = 1\n"),
              HasSubstr("port"));
}

TEST(Store, AnUnreadablePasswordFileFailsTheOpenClearly) {
  StoreConfig c;
  c.backend = StoreEngine::kPostgresql;
  c.postgresql = "host=127.0.0.1 dbname=x user=y";
  c.password_file = "/nonexistent/mtw-db.pw";
  auto s = Store::open(c, "");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, base::Errc::kSyscall);
  EXPECT_THAT(s.error().context, HasSubstr("password_file /nonexistent/mtw-db.pw"));
  c.password_file.clear();
  c.postgresql = "host='x";
  EXPECT_EQ(Store::open(c, "").error().code, base::Errc::kBadInput);
  c.postgresql = "host=127.0.0.1";
  c.host_name = "bad host";
  EXPECT_THAT(Store::open(c, "").error().context, HasSubstr("host name"));
}

TEST(Cidr, ParsesAndFormatsBothFamilies) {
  EXPECT_EQ(format_cidr(parse_cidr("10.200.0.0/16").value()), "10.200.0.0/16");
  EXPECT_EQ(format_cidr(parse_cidr("fd6d:7477:6172::/48").value()), "fd6d:7477:6172::/48");
  EXPECT_FALSE(parse_cidr("10.0.0.0/33"));
  EXPECT_FALSE(parse_cidr("10.0.0.0"));
}

TEST(Cidr, CapacityCountsCellLinks) {
  CellsConfig c;
  c.ipv4_pool = parse_cidr("10.0.0.0/24").value();
  c.ipv4_cell_prefix = 30;
  EXPECT_EQ(ipv4_cell_capacity(c), 64u);
  c.ipv4_cell_prefix = 31;
  EXPECT_EQ(ipv4_cell_capacity(c), 128u);
  c.ipv6_prefix = parse_cidr("fd00::/56").value();
  EXPECT_EQ(ipv6_cell_capacity(c), 256u);
}

}  // namespace
}  // namespace mtw::supervisor
