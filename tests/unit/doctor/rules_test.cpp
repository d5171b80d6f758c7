// The verdict rules of `mtwarden doctor`: what passes, warns and fails, and
// the exit code a script sees.
#include "doctor/rules.h"

#include <gtest/gtest.h>

#include "doctor/doctor.h"
#include "doctor/tls_visit.h"

namespace mtw::doctor {
namespace {

constexpr std::int64_t kNow = 1'800'000'000;

CertFacts good_cert() {
  CertFacts c;
  c.connected = true;
  c.name_matches = true;
  c.chain_trusted = true;
  c.not_before = kNow - 86400;
  c.not_after = kNow + 90 * 86400;
  c.names = {"mask.test"};
  return c;
}

TEST(DoctorExitCode, PassWarnFailInThatOrder) {
  std::vector<Check> c(3);
  c[0].verdict = Verdict::kPass;
  c[1].verdict = Verdict::kSkip;
  c[2].verdict = Verdict::kPass;
  EXPECT_EQ(exit_code(c), kExitPass);
  c[1].verdict = Verdict::kWarn;
  EXPECT_EQ(exit_code(c), kExitWarn);
  c[2].verdict = Verdict::kFail;
  EXPECT_EQ(exit_code(c), kExitFail);
  EXPECT_EQ(exit_code({}), kExitPass);
}

TEST(DoctorFormat, TextNamesVerdictIdSubjectAndFixAndEscapesControls) {
  Check c;
  c.id = "mask.cert";
  c.subject = "mask.test";
  c.verdict = Verdict::kFail;
  c.reason = "for evil\x1b[31m";
  c.fix = "do this";
  c.values = {{"names", "a\nb"}};
  const std::string t = format_text(std::vector<Check>{c});
  EXPECT_NE(t.find("FAIL  mask.cert  mask.test: for evil\\x1b[31m"), std::string::npos) << t;
  EXPECT_NE(t.find("fix: do this"), std::string::npos);
  EXPECT_NE(t.find("names: a\\nb"), std::string::npos);
  EXPECT_NE(t.find("0 passed, 0 warnings, 1 failed, 0 skipped"), std::string::npos);
}

TEST(DoctorFormat, JsonCarriesVerdictsSummaryAndExitCode) {
  Check a, b;
  a.id = "dc";
  a.verdict = Verdict::kPass;
  b.id = "clock";
  b.verdict = Verdict::kWarn;
  b.values = {{"offset_s", "42.0"}};
  const std::string j = format_json(std::vector<Check>{a, b});
  EXPECT_NE(j.find("\"verdict\":\"warn\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"values\":{\"offset_s\":\"42.0\"}"), std::string::npos) << j;
  EXPECT_NE(j.find("\"summary\":{\"pass\":1,\"warn\":1,\"fail\":0,\"skip\":0}"), std::string::npos);
  EXPECT_NE(j.find("\"exit_code\":1"), std::string::npos);
}

TEST(DoctorMaskTls, FailsWithTheProbeErrorAndPassesAHandshake) {
  base::Result<proto::FlightSample> bad =
      base::fail(base::Errc::kSyscall, "mask probe connect 127.0.0.1:443");
  EXPECT_EQ(judge_mask_tls("mask.test", "127.0.0.1:443", bad).verdict, Verdict::kFail);
  proto::FlightSample s;
  s.flight.cipher_suite = 0x1302;
  s.latency_ms = 3;
  const Check c = judge_mask_tls("mask.test", "127.0.0.1:443", s);
  EXPECT_EQ(c.verdict, Verdict::kPass);
  EXPECT_NE(c.reason.find("1302"), std::string::npos);
}

TEST(DoctorCertificate, ValidTrustedNamePasses) {
  EXPECT_EQ(judge_certificate("mask.test", good_cert(), kNow).verdict, Verdict::kPass);
}

TEST(DoctorCertificate, AnotherNameFails) {
  CertFacts c = good_cert();
  c.name_matches = false;
  c.names = {"other.test"};
  const Check r = judge_certificate("mask.test", c, kNow);
  EXPECT_EQ(r.verdict, Verdict::kFail);
  EXPECT_NE(r.reason.find("other.test"), std::string::npos);
  EXPECT_FALSE(r.fix.empty());
}

TEST(DoctorCertificate, ExpiredOrNotYetValidFails) {
  CertFacts c = good_cert();
  c.not_after = kNow - 1;
  EXPECT_EQ(judge_certificate("mask.test", c, kNow).verdict, Verdict::kFail);
  c = good_cert();
  c.not_before = kNow + 3600;
  EXPECT_EQ(judge_certificate("mask.test", c, kNow).verdict, Verdict::kFail);
}

TEST(DoctorCertificate, SelfSignedOrSoonExpiringWarns) {
  CertFacts c = good_cert();
  c.chain_trusted = false;
  c.verify_error = "self-signed certificate";
  EXPECT_EQ(judge_certificate("mask.test", c, kNow).verdict, Verdict::kWarn);
  c = good_cert();
  c.not_after = kNow + 3 * 86400;
  EXPECT_EQ(judge_certificate("mask.test", c, kNow).verdict, Verdict::kWarn);
}

TEST(DoctorCertificate, NoConnectionSkips) {
  CertFacts c;
  c.error = "refused";
  EXPECT_EQ(judge_certificate("mask.test", c, kNow).verdict, Verdict::kSkip);
}

proto::TlsProfile measured(std::vector<proto::RecordRange> flight) {
  proto::TlsProfile p = proto::builtin_profile();
  p.source = proto::ProfileSource::kMeasured;
  p.domain = "mask.test";
  p.measured_at = kNow;
  p.encrypted_records = std::move(flight);
  return p;
}

TEST(DoctorProfile, MatchingStoredProfilePassesAndSaysSingleOrMulti) {
  StoredProfile s{true, "", measured({{36, 36}, {900, 900}, {281, 281}, {53, 53}})};
  s.profile.measured_at = kNow - 7200;
  const Check multi = judge_profile(
      "mask.test", measured({{36, 36}, {900, 900}, {281, 281}, {53, 53}}), s, true, kNow);
  EXPECT_EQ(multi.verdict, Verdict::kPass) << multi.reason;
  EXPECT_NE(multi.reason.find("multi-record first flight (4 records)"), std::string::npos);
  s.profile.encrypted_records = {{1290, 1290}};
  const Check single = judge_profile("mask.test", measured({{1290, 1290}}), s, true, kNow);
  EXPECT_EQ(single.verdict, Verdict::kPass) << single.reason;
  EXPECT_NE(single.reason.find("single-record"), std::string::npos);
}

TEST(DoctorProfile, NoStoredProfileSaysBuiltInAndWarns) {
  const Check c = judge_profile("mask.test", measured({{36, 36}, {900, 900}}), {}, true, kNow);
  EXPECT_EQ(c.verdict, Verdict::kWarn);
  EXPECT_NE(c.reason.find("built-in profile"), std::string::npos) << c.reason;
  const Check off = judge_profile("mask.test", measured({{36, 36}}), {}, false, kNow);
  EXPECT_NE(off.reason.find("probe = false"), std::string::npos) << off.reason;
}

TEST(DoctorProfile, StaleStoredProfileWarns) {
  StoredProfile s{true, "", measured({{36, 36}, {3000, 3000}})};
  const Check c = judge_profile("mask.test", measured({{36, 36}, {900, 900}}), s, true, kNow);
  EXPECT_EQ(c.verdict, Verdict::kWarn);
  EXPECT_NE(c.reason.find("flight size"), std::string::npos) << c.reason;
}

TEST(DoctorProfile, FlightLargerThanOneRecordWarns) {
  StoredProfile s{true, "", measured({{16000, 16000}, {16000, 16000}})};
  const Check c =
      judge_profile("mask.test", measured({{16000, 16000}, {16000, 16000}}), s, true, kNow);
  EXPECT_EQ(c.verdict, Verdict::kWarn);
}

TEST(DoctorProfile, UnmeasurableMaskWarnsAndNamesWhatIsUsed) {
  base::Result<proto::TlsProfile> bad = base::fail(base::Errc::kBadInput, "fields disagree");
  const Check c = judge_profile("mask.test", bad, {}, true, kNow);
  EXPECT_EQ(c.verdict, Verdict::kWarn);
  EXPECT_NE(c.reason.find("built-in"), std::string::npos);
}

TEST(DoctorLatency, ThresholdAt100Ms) {
  EXPECT_EQ(judge_latency("d", {1, kLatencyWarnMs, 400}).verdict, Verdict::kPass);
  EXPECT_EQ(judge_latency("d", {1, kLatencyWarnMs + 1, 400}).verdict, Verdict::kWarn);
}

TEST(DoctorDns, PassesWhenTheSniPointsHere) {
  std::vector<std::string> addrs = {"192.0.2.7", "2001:db8::7"};
  EXPECT_EQ(judge_dns("d", addrs, {"2001:db8::7"}).verdict, Verdict::kPass);
  const Check c = judge_dns("d", addrs, {"198.51.100.1"});
  EXPECT_EQ(c.verdict, Verdict::kWarn);
  EXPECT_NE(c.reason.find("not to this host"), std::string::npos);
  base::Result<std::vector<std::string>> none = base::fail(base::Errc::kNotFound, "NXDOMAIN");
  EXPECT_EQ(judge_dns("d", none, {"198.51.100.1"}).verdict, Verdict::kWarn);
}

TEST(DoctorClock, PassWarnFailAgainstTheWindow) {
  ClockReading r;
  r.have = true;
  r.source = "ntp";
  r.uncertainty_s = 1;
  r.offset_s = 5;
  EXPECT_EQ(judge_clock(r, 600).verdict, Verdict::kPass);
  r.offset_s = -12;
  EXPECT_EQ(judge_clock(r, 600).verdict, Verdict::kWarn);
  r.offset_s = 299;
  EXPECT_EQ(judge_clock(r, 600).verdict, Verdict::kWarn);
  r.offset_s = -300;
  EXPECT_EQ(judge_clock(r, 600).verdict, Verdict::kFail);
  r.offset_s = 2000;
  const Check c = judge_clock(r, 600);
  EXPECT_EQ(c.verdict, Verdict::kFail);
  EXPECT_NE(c.reason.find("every"), std::string::npos);
  EXPECT_NE(c.reason.find("behind"), std::string::npos);
  ClockReading none;
  none.errors = {"ntp: no answer"};
  EXPECT_EQ(judge_clock(none, 600).verdict, Verdict::kWarn);
}

ListenerFacts listener(const char* host, std::uint16_t port, bool tls, bool other, bool up) {
  ListenerFacts f;
  f.bind = {host, port};
  f.tls = tls;
  f.other = other;
  f.accepting = up;
  f.probed = std::string(host) + ":" + std::to_string(port);
  f.error = up ? "" : "connection refused";
  return f;
}

TEST(DoctorListener, TlsOnlyOn443AcceptingPasses) {
  EXPECT_EQ(judge_listener({listener("0.0.0.0", 443, true, false, true)}).verdict, Verdict::kPass);
}

TEST(DoctorListener, No443OrNotAcceptingOrMixedWarns) {
  EXPECT_EQ(judge_listener({listener("0.0.0.0", 8443, true, false, true)}).verdict, Verdict::kWarn);
  EXPECT_EQ(judge_listener({listener("0.0.0.0", 443, true, false, false)}).verdict, Verdict::kWarn);
  EXPECT_EQ(judge_listener({listener("0.0.0.0", 443, true, true, true)}).verdict, Verdict::kWarn);
  // A TLS-only one on 443 beside a mixed one is what counts.
  EXPECT_EQ(judge_listener({listener("0.0.0.0", 443, true, true, true),
                            listener("::", 443, true, false, true)})
                .verdict,
            Verdict::kPass);
}

TEST(DoctorLoop, TargetOnOurListenerFails) {
  const std::set<std::string> local = {"127.0.0.1", "192.0.2.7", "::1"};
  const std::vector<proto::Endpoint> binds = {{"0.0.0.0", 443}};
  std::vector<std::string> to_us = {"192.0.2.7"};
  EXPECT_EQ(judge_loop("d", {"d", 443}, to_us, local, binds).verdict, Verdict::kFail);
  // Same host, another port: the real site beside the proxy.
  EXPECT_EQ(judge_loop("d", {"d", 8443}, to_us, local, binds).verdict, Verdict::kPass);
  std::vector<std::string> elsewhere = {"198.51.100.9"};
  EXPECT_EQ(judge_loop("d", {"d", 443}, elsewhere, local, binds).verdict, Verdict::kPass);
  // An IPv6 wildcard does not cover an IPv4 target, a specific bind only itself.
  EXPECT_EQ(judge_loop("d", {"d", 443}, to_us, local, {{"::", 443}}).verdict, Verdict::kPass);
  EXPECT_EQ(judge_loop("d", {"d", 443}, to_us, local, {{"127.0.0.1", 443}}).verdict,
            Verdict::kPass);
  EXPECT_EQ(judge_loop("d", {"127.0.0.2", 443}, std::vector<std::string>{"127.0.0.2"}, local,
                       {{"0.0.0.0", 443}})
                .verdict,
            Verdict::kFail);
}

TEST(DoctorDc, AnyAddressAnsweringPasses) {
  std::vector<ConnectResult> tries = {{"[2001:db8::1]:443", false, "unreachable", 0},
                                      {"192.0.2.1:443", true, "", 12}};
  EXPECT_EQ(judge_dc(2, tries, true).verdict, Verdict::kPass);
  tries[1].ok = false;
  EXPECT_EQ(judge_dc(2, tries, true).verdict, Verdict::kFail);
  // Nobody dials directly: worth knowing, not a failure.
  EXPECT_EQ(judge_dc(2, tries, false).verdict, Verdict::kWarn);
}

TEST(DoctorUpstream, AllSomeNoneAndSkip) {
  std::vector<ConnectResult> r = {{"dc 1", true, "", 3}, {"dc 2", true, "", 4}};
  EXPECT_EQ(judge_upstream("u", "socks5", r, "").verdict, Verdict::kPass);
  r[1] = {"dc 2", false, "connection refused", 0};
  EXPECT_EQ(judge_upstream("u", "socks5", r, "").verdict, Verdict::kWarn);
  r[0] = {"dc 1", false, "connection refused", 0};
  const Check c = judge_upstream("u", "socks5", r, "");
  EXPECT_EQ(c.verdict, Verdict::kFail);
  EXPECT_NE(c.reason.find("connection refused"), std::string::npos);
  EXPECT_EQ(judge_upstream("u", "direct", {}, "a direct upstream").verdict, Verdict::kSkip);
}

TEST(DoctorHttpDate, ParsesImfFixdateAndRefusesOthers) {
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
  EXPECT_FALSE(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"));
  EXPECT_FALSE(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"));
  EXPECT_FALSE(parse_http_date("Sun, 06 Nov 1994 25:49:37 GMT"));
}

TEST(DoctorArgs, ParsesOptionsAndRefusesUnknownOnes) {
  auto o = parse_doctor_args({"--config", "/x.toml", "--json", "--domain=a.test", "--ntp", "none",
                              "--public-address", "192.0.2.1", "--self-probe", "127.0.0.1:443"});
  ASSERT_TRUE(o) << o.error().context;
  EXPECT_EQ(o->config_path, "/x.toml");
  EXPECT_TRUE(o->json);
  EXPECT_EQ(o->domains, std::vector<std::string>{"a.test"});
  EXPECT_EQ(o->ntp, "none");
  EXPECT_FALSE(parse_doctor_args({"--bogus"}));
  EXPECT_FALSE(parse_doctor_args({"--config"}));
  EXPECT_FALSE(parse_doctor_args({"--public-address", "host.example"}));
  EXPECT_FALSE(parse_doctor_args({"--timeout-ms", "5"}));
  EXPECT_EQ(doctor_main({"--bogus"}), kExitUsage);
  EXPECT_EQ(doctor_main({"--config", "/nonexistent/mtwarden.toml"}), kExitConfig);
}

}  // namespace
}  // namespace mtw::doctor
