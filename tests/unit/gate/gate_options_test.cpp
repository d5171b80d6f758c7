#include "gate/gate_options.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/unique_fd.h"

namespace mtw::gate {
namespace {

constexpr std::string_view kSimple = "0123456789abcdef0123456789abcdef";
// ee + key + "example.com"
constexpr std::string_view kTls = "ee0123456789abcdef0123456789abcdef6578616d706c652e636f6d";

base::Result<GateOptions> parse(std::vector<std::string_view> args) {
  return parse_gate_options(args);
}

TEST(GateOptions, ParsesMinimalCommandLineWithDefaults) {
  auto o = parse({"--control-fd", "3", "--listen-fd", "4"});
  ASSERT_TRUE(o) << o.error().to_string();
  EXPECT_EQ(o->control_fd, 3);
  ASSERT_EQ(o->listeners.size(), 1u);
  EXPECT_EQ(o->listeners[0].fd, 4);
  EXPECT_EQ(o->listeners[0].id, 0u);
  EXPECT_EQ(o->listeners[0].allowed, proto::AllowedProtocols{});
  EXPECT_FALSE(o->mask);
  EXPECT_EQ(o->handshake_timeout_ms, 10'000u);
  EXPECT_EQ(o->max_handshakes, 4096u);
  EXPECT_EQ(o->replay_entries, 1u << 20);
  EXPECT_EQ(o->tls_skew_seconds, 600);
  EXPECT_EQ(o->log_level, "info");
}

TEST(GateOptions, ParsesEveryFlag) {
  auto o = parse({"--control-fd=5",
                  "--listen-fd",
                  "6:17:tls",
                  "--listen-fd",
                  "7:3:abridged,secure",
                  "--listen-fd",
                  "8",
                  "--mask",
                  "127.0.0.1:8080",
                  "--mask-discard-timeout",
                  "250ms",
                  "--tls-skew",
                  "30",
                  "--handshake-timeout",
                  "1.5",
                  "--replay-entries",
                  "1000",
                  "--max-handshakes",
                  "10",
                  "--log-level",
                  "warning"});
  ASSERT_TRUE(o) << o.error().to_string();
  EXPECT_EQ(o->control_fd, 5);
  ASSERT_EQ(o->listeners.size(), 3u);
  EXPECT_EQ(o->listeners[0], (GateListenerSpec{6, 17, {false, false, false, true}}));
  EXPECT_EQ(o->listeners[1], (GateListenerSpec{7, 3, {true, false, true, false}}));
  EXPECT_EQ(o->listeners[2].id, 2u);  // default: position
  ASSERT_TRUE(o->mask);
  EXPECT_EQ(o->mask->port, 8080);
  EXPECT_EQ(o->mask_discard_timeout_ms, 250u);
  EXPECT_EQ(o->tls_skew_seconds, 30);
  EXPECT_EQ(o->handshake_timeout_ms, 1500u);
  EXPECT_EQ(o->replay_entries, 1000u);
  EXPECT_EQ(o->max_handshakes, 10u);
  EXPECT_EQ(o->log_level, "warn");
}

TEST(GateOptions, HelpWinsOverEverythingElse) {
  auto o = parse({"--bogus", "--help"});
  EXPECT_FALSE(o);  // flags are checked in order
  o = parse({"--help", "--bogus"});
  ASSERT_TRUE(o);
  EXPECT_TRUE(o->help);
  EXPECT_NE(gate_usage_text().find("--listen-fd"), std::string::npos);
  EXPECT_NE(gate_usage_text().find("--max-handshakes"), std::string::npos);
}

TEST(GateOptions, RejectsBadCommandLines) {
  const std::vector<std::vector<std::string_view>> bad = {
      {},
      {"--listen-fd", "4"},                       // no control fd
      {"--control-fd", "3"},                      // no listener
      {"--control-fd", "3", "--listen-fd", "3"},  // same fd twice
      {"--control-fd", "3", "--listen-fd", "4", "--listen-fd", "4"},
      {"--control-fd", "2", "--listen-fd", "4"},  // stdio
      {"--control-fd", "3", "--listen-fd", "x"},
      {"--control-fd", "3", "--listen-fd", "4:"},    // empty id
      {"--control-fd", "3", "--listen-fd", "4:1:"},  // empty protocols
      {"--control-fd", "3", "--listen-fd", "4:1:ftp"},
      {"--control-fd", "3", "--listen-fd", "4:-1"},
      {"--control-fd", "3", "--listen-fd", "4", "--mask", "nohost"},
      {"--control-fd", "3", "--listen-fd", "4", "--handshake-timeout", "0"},
      {"--control-fd", "3", "--listen-fd", "4", "--handshake-timeout", "soon"},
      {"--control-fd", "3", "--listen-fd", "4", "--replay-entries", "0"},
      {"--control-fd", "3", "--listen-fd", "4", "--max-handshakes", "0"},
      {"--control-fd", "3", "--listen-fd", "4", "--log-level", "loud"},
      {"--control-fd", "3", "--listen-fd", "4", "--secret", kSimple},  // worker flag
      {"--control-fd", "3", "--listen-fd"},                            // missing value
      {"--control-fd", "3", "--listen-fd", "4", "--silent-timeout", "0"},
      {"--control-fd", "3", "--listen-fd", "4", "--ipv6-source-prefix", "0"},
      {"--control-fd", "3", "--listen-fd", "4", "--ipv6-source-prefix", "129"},
      {"--control-fd", "3", "--listen-fd", "4", "--ipv4-subnet-prefix", "33"},
      {"--control-fd", "3", "--listen-fd", "4", "--source-handshakes", "-1"},
  };
  for (const auto& args : bad) {
    auto o = parse(args);
    std::string joined;
    for (auto a : args) joined += std::string(a) + " ";
    EXPECT_FALSE(o) << joined;
    if (!o) {
      EXPECT_EQ(o.error().code, base::Errc::kBadInput) << joined;
    }
  }
}

TEST(GateOptions, AdmissionFlagsAndDefaults) {
  auto d = parse({"--control-fd", "3", "--listen-fd", "4"});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->silent_timeout_ms, 3'000u);
  EXPECT_EQ(d->admission.per_source, 128u);  // a client's burst of 50 fits
  EXPECT_EQ(d->admission.per_subnet, 512u);
  EXPECT_EQ(d->admission.ipv6_source_prefix, 64);
  EXPECT_EQ(d->admission.ipv6_subnet_prefix, 48);
  EXPECT_EQ(d->admission.ipv4_subnet_prefix, 24);
  auto o = parse({"--control-fd", "3", "--listen-fd", "4", "--silent-timeout", "500ms",
                  "--source-handshakes", "0", "--subnet-handshakes", "64", "--ipv6-source-prefix",
                  "56", "--ipv6-subnet-prefix", "40", "--ipv4-subnet-prefix=16"});
  ASSERT_TRUE(o) << o.error().to_string();
  EXPECT_EQ(o->silent_timeout_ms, 500u);
  EXPECT_EQ(o->admission.per_source, 0u);
  EXPECT_EQ(o->admission.per_subnet, 64u);
  EXPECT_EQ(o->admission.ipv6_source_prefix, 56);
  EXPECT_EQ(o->admission.ipv6_subnet_prefix, 40);
  EXPECT_EQ(o->admission.ipv4_subnet_prefix, 16);
}

TEST(GateOptions, ErrorNamesTheFlag) {
  auto o = parse({"--control-fd", "3", "--listen-fd", "4:1:ftp"});
  ASSERT_FALSE(o);
  EXPECT_NE(o.error().context.find("--listen-fd"), std::string::npos) << o.error().context;
}

}  // namespace
}  // namespace mtw::gate
