#include "api/metrics.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace mtw::api {
namespace {

std::vector<UserStatus> sample_users() {
  UserStatus a;
  a.name = "alice";
  a.state = "running";
  a.connections = 3;
  a.connections_total = 10;
  a.bytes_up_total = 100;
  a.bytes_down_total = 200;
  a.quota.quota_bytes = 1000;
  a.quota.used_bytes = 250;
  a.throttled_quota = true;
  a.restarts = 2;
  a.egress_dropped = 7;
  a.mode = "middle";
  a.worker_counters = {{"middle_clients", 12}, {"middle_errors", 2}};
  a.upstreams = {{"dante", true, 4, 1, 1000, 2000, 0}, {"dead", false, 0, 3, 0, 0, 1}};
  UserStatus b;  // a name that needs escaping (the API forbids it; metrics must not break anyway)
  b.name = "we\"ird\\na\nme";
  b.state = "failed";
  return {a, b};
}

ServerStatus sample_server() {
  ServerStatus s;
  s.gate_ready = true;
  s.gate_restarts = 1;
  s.gate_counters = {
      {"fail_bad_handshake", 5}, {"fail_replay", 2}, {"masked", 7}, {"mask_unreachable", 4}};
  s.masked_total = 7;
  s.cells = 1;
  s.uptime_s = 42;
  s.sweep_cpu_ns_total = 1'500'000'000;
  s.webhooks_delivered = 11;
  s.webhooks_failed = 2;
  s.webhooks_dropped = 3;
  s.webhook_failed_attempts = 9;
  return s;
}

TEST(Metrics, RendersUserSeriesWithLabels) {
  const std::string t = metrics_text(sample_server(), sample_users());
  EXPECT_NE(t.find("mtwarden_user_bytes_total{user=\"alice\",direction=\"up\"} 100\n"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("mtwarden_user_connections{user=\"alice\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("mtwarden_user_egress_dropped_packets_total{user=\"alice\"} 7\n"),
            std::string::npos);
  EXPECT_NE(t.find("mtwarden_user_quota_used_ratio{user=\"alice\"} 0.25\n"), std::string::npos);
  EXPECT_NE(t.find("mtwarden_user_throttled{user=\"alice\",reason=\"quota\"} 1\n"),
            std::string::npos);
  EXPECT_NE(t.find("mtwarden_user_up{user=\"alice\",state=\"running\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("mtwarden_handshake_failures_total{reason=\"bad_handshake\"} 5\n"),
            std::string::npos);
  EXPECT_EQ(t.find("reason=\"masked\""), std::string::npos);
  EXPECT_NE(t.find("mtwarden_users{state=\"failed\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("mtwarden_sweep_cpu_seconds_total 1.5\n"), std::string::npos);
  EXPECT_NE(t.find("# TYPE mtwarden_gate_up gauge\n"), std::string::npos);
}

TEST(Metrics, RendersPerUpstreamSeries) {
  const std::string t = metrics_text(sample_server(), sample_users());
  for (const char* line :
       {"mtwarden_user_upstream_connects_total{user=\"alice\",upstream=\"dante\"} 4\n",
        "mtwarden_user_upstream_failures_total{user=\"alice\",upstream=\"dead\"} 3\n",
        "mtwarden_user_upstream_marked_down_total{user=\"alice\",upstream=\"dead\"} 1\n",
        "mtwarden_user_upstream_bytes_total{user=\"alice\",upstream=\"dante\",direction=\"down\"} "
        "2000\n",
        "mtwarden_user_upstream_up{user=\"alice\",upstream=\"dante\"} 1\n",
        "mtwarden_user_upstream_up{user=\"alice\",upstream=\"dead\"} 0\n"})
    EXPECT_NE(t.find(line), std::string::npos) << line;
}

TEST(Metrics, RendersEachUsersModeAndMiddleCounters) {
  const std::string t = metrics_text(sample_server(), sample_users());
  for (const char* line : {"mtwarden_user_mode{user=\"alice\",mode=\"direct\"} 0\n",
                           "mtwarden_user_mode{user=\"alice\",mode=\"middle\"} 1\n",
                           "mtwarden_user_mode{user=\"alice\",mode=\"fallback\"} 0\n",
                           "mode=\"direct\"} 1\n",  // the other user: direct by default
                           "mtwarden_user_middle_clients{user=\"alice\"} 12\n",
                           "mtwarden_user_middle_errors_total{user=\"alice\"} 2\n"})
    EXPECT_NE(t.find(line), std::string::npos) << line;
}

TEST(Metrics, RendersMaskOutcomesFromGateCounters) {
  const std::string t = metrics_text(sample_server(), sample_users());
  EXPECT_NE(t.find("mtwarden_mask_unreachable_total 4\n"), std::string::npos) << t;
  EXPECT_NE(t.find("mtwarden_mask_dropped_total 0\n"), std::string::npos);
  EXPECT_EQ(t.find("reason=\"unreachable\""), std::string::npos);
}

TEST(Metrics, RendersMaskProfilesWithSourceAndNoAgeForBuiltin) {
  ServerStatus s = sample_server();
  s.mask_profiles.probing = true;
  supervisor::MaskProfileView a;
  a.domain = "a.example";
  a.target = "a.example:443";
  a.origin = supervisor::ProfileOrigin::kMeasured;
  a.measured_at = 1000;
  a.age_s = 60;
  a.flight = {{36, 36}, {900, 900}};
  a.flight_wire = {946, 946};
  a.latency = {2, 3, 40};
  supervisor::MaskProfileView b;
  b.domain = "b.example";
  b.target = "10.0.0.1:443";
  b.last_error = "mask probe connect: refused";
  s.mask_profiles.profiles = {a, b};
  const std::string t = metrics_text(s, sample_users());
  EXPECT_NE(t.find("mtwarden_mask_probing 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("mtwarden_mask_profile_info{domain=\"a.example\",target=\"a.example:443\","
                   "source=\"measured\"} 1\n"),
            std::string::npos);
  EXPECT_NE(t.find("source=\"builtin\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("mtwarden_mask_profile_age_seconds{domain=\"a.example\"} 60\n"),
            std::string::npos);
  EXPECT_EQ(t.find("mtwarden_mask_profile_age_seconds{domain=\"b.example\"}"), std::string::npos);
  EXPECT_NE(t.find("mtwarden_mask_profile_probe_failing{domain=\"b.example\"} 1\n"),
            std::string::npos);
  EXPECT_NE(t.find("mtwarden_mask_profile_flight_bytes{domain=\"a.example\",bound=\"max\"} 946\n"),
            std::string::npos);
  EXPECT_NE(t.find("mtwarden_mask_profile_handshake_seconds{domain=\"a.example\",stat=\"max\"} "
                   "0.04\n"),
            std::string::npos);
}

TEST(Metrics, RendersWebhookDeliveries) {
  const std::string t = metrics_text(sample_server(), sample_users());
  EXPECT_NE(t.find("# TYPE mtwarden_webhook_deliveries_total counter\n"), std::string::npos) << t;
  EXPECT_NE(t.find("mtwarden_webhook_deliveries_total{result=\"delivered\"} 11\n"),
            std::string::npos);
  EXPECT_NE(t.find("mtwarden_webhook_deliveries_total{result=\"failed\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("mtwarden_webhook_deliveries_total{result=\"dropped\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("mtwarden_webhook_failed_attempts_total 9\n"), std::string::npos);
}

TEST(Metrics, EscapesLabelValues) {
  const std::string t = metrics_text(sample_server(), sample_users());
  EXPECT_NE(t.find("user=\"we\\\"ird\\\\na\\nme\""), std::string::npos) << t;
  // No user without a quota gets a ratio.
  EXPECT_EQ(t.find("mtwarden_user_quota_used_ratio{user=\"we"), std::string::npos);
}

TEST(Metrics, PassesPromtoolCheck) {
  ASSERT_EQ(std::system("command -v promtool >/dev/null 2>&1"), 0)
      << "promtool missing: scripts/deps.sh --test installs prometheus";
  const std::string path =
      (std::filesystem::temp_directory_path() / ("mtw_metrics_" + std::to_string(::getpid())))
          .string();
  std::ofstream(path) << metrics_text(sample_server(), sample_users());
  const std::string cmd = "promtool check metrics < " + path + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int rc = ::pclose(p);
  std::filesystem::remove(path);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "") << out;  // lint findings are printed too
}

}  // namespace
}  // namespace mtw::api
