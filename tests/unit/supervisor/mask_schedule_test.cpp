// MaskSchedule: which targets are probed, when, what is kept on disk, and
// that a failed probe keeps the last good profile. The prober is a fake
// (the real one is tested against nginx in mask_probe_privileged_test).
#include "supervisor/mask_schedule.h"

#include "supervisor/mask_profile_view.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

namespace mtw::supervisor {
namespace {

namespace fs = std::filesystem;
using proto::Endpoint;

proto::TlsProfile measured(std::string domain, std::int64_t at, std::size_t cert_len) {
  proto::TlsProfile p = proto::builtin_profile();
  p.source = proto::ProfileSource::kMeasured;
  p.domain = std::move(domain);
  p.measured_at = at;
  p.samples = 3;
  p.encrypted_records = {{36, 36}, {cert_len, cert_len}, {281, 281}, {53, 53}};
  return p;
}

struct FakeProber {
  // Shared with the probe threads, which may outlive one test's schedule.
  struct State {
    std::atomic<int> calls{0};
    std::atomic<bool> fail{false};
    std::atomic<std::size_t> cert_len{1000};
    std::string last_host, last_sni;
    std::uint16_t last_port = 0;
    std::mutex mu;
  };
  std::shared_ptr<State> s = std::make_shared<State>();
  MaskSchedule::Prober prober() {
    auto st = s;
    return [st](const MaskProbeOptions& o, std::int64_t now) -> base::Result<proto::TlsProfile> {
      {
        std::lock_guard lock(st->mu);
        st->last_host = o.host;
        st->last_port = o.port;
        st->last_sni = o.sni;
      }
      ++st->calls;
      if (st->fail) return base::fail(base::Errc::kTimeout, "mask probe connect: timed out");
      return measured(o.sni, now, st->cert_len);
    };
  }
};

class MaskScheduleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mtw-mask-schedule.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/profiles";
  }
  void TearDown() override { fs::remove_all(root_); }

  MaskSchedule::Options options() {
    MaskSchedule::Options o;
    o.dir = dir_;
    o.interval_s = 3600;
    o.retry_s = 60;
    o.jitter_s = 0;
    o.prober = fake_.prober();
    return o;
  }
  // Polls until the running probe has finished (the fake returns at once).
  MaskSchedule::PollResult settle(MaskSchedule& s, std::int64_t now) {
    for (int i = 0; i < 500; ++i) {
      auto r = s.poll(now);
      if (!s.probing()) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ADD_FAILURE() << "probe did not finish";
    return {};
  }

  std::string root_, dir_;
  FakeProber fake_;
};

TEST(MaskProbeTargets, OneTargetPerDistinctDomainFromTheRoutes) {
  proto::MaskRoutes routes;
  routes.domain_default = true;
  routes.domains = {{"b.example", Endpoint{"10.0.0.2", 8443}}};
  routes.listeners = {{0, Endpoint{"10.0.0.9", 443}}};  // not for probes: no listener
  const auto t = mask_probe_targets(routes, {"B.example", "a.example", "b.example", ""});
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0], (MaskTarget{"a.example", Endpoint{"a.example", 443}}));
  EXPECT_EQ(t[1], (MaskTarget{"b.example", Endpoint{"10.0.0.2", 8443}}));
  EXPECT_TRUE(mask_probe_targets(proto::MaskRoutes{}, {"a.example"}).empty());  // masking off
}

TEST(MaskProbeTargets, NextProbeIsIntervalPlusJitter) {
  proto::SeededRandom rnd(1);
  for (int i = 0; i < 100; ++i) {
    const auto at = next_probe_at(1000, 3600, 600, rnd);
    EXPECT_GE(at, 4600);
    EXPECT_LE(at, 5200);
  }
  EXPECT_EQ(next_probe_at(1000, 3600, 0, rnd), 4600);
}

TEST(MaskProbeTargets, ProfilePathRefusesNonFileNames) {
  EXPECT_EQ(*profile_path("/d", "a.example"), "/d/a.example.profile");
  EXPECT_FALSE(profile_path("/d", "../x"));
  EXPECT_FALSE(profile_path("/d", "a/b"));
  EXPECT_FALSE(profile_path("/d", ""));
}

TEST_F(MaskScheduleTest, ProbesAtOnceThenAfterTheInterval) {
  MaskSchedule s(options());
  EXPECT_TRUE(s.set_targets({{"a.example", Endpoint{"10.0.0.1", 443}}}).empty());
  EXPECT_EQ(&s.profile_for("a.example"), &proto::builtin_profile());  // nothing measured yet
  const auto started = s.poll(1000);
  EXPECT_EQ(started.started, "a.example");
  const auto r = settle(s, 1000);
  EXPECT_EQ(r.finished, "a.example");
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(fake_.s->calls, 1);
  EXPECT_EQ(fake_.s->last_host, "10.0.0.1");
  EXPECT_EQ(fake_.s->last_sni, "a.example");
  EXPECT_EQ(s.profile_for("A.EXAMPLE").source, proto::ProfileSource::kMeasured);
  EXPECT_EQ(s.entries()[0].next_at, 1000 + 3600);
  EXPECT_FALSE(s.poll(4599).changed);
  EXPECT_EQ(fake_.s->calls, 1);
  EXPECT_EQ(s.poll(4600).started, "a.example");
  const auto again = settle(s, 4600);
  EXPECT_FALSE(again.changed);  // only measured_at differs: the same answer, nothing to push
  EXPECT_EQ(s.profile_for("a.example").measured_at, 4600);  // the newest measurement is kept
  fake_.s->cert_len = 1200;
  s.poll(8200);
  EXPECT_TRUE(settle(s, 8200).changed);  // another certificate: push
  EXPECT_EQ(fake_.s->calls, 3);
}

TEST_F(MaskScheduleTest, FailedProbeKeepsTheLastGoodProfileAndRetriesSooner) {
  MaskSchedule s(options());
  (void)s.set_targets({{"a.example", Endpoint{"10.0.0.1", 443}}});
  s.poll(1000);
  settle(s, 1000);
  const proto::TlsProfile good = s.profile_for("a.example");
  fake_.s->fail = true;
  s.poll(4600);
  const auto r = settle(s, 4600);
  EXPECT_EQ(r.error, "timeout: mask probe connect: timed out");
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(s.profile_for("a.example"), good);
  EXPECT_EQ(s.entries()[0].last_error, r.error);
  EXPECT_EQ(s.entries()[0].next_at, 4600 + 60);
}

TEST_F(MaskScheduleTest, GoodProfileSurvivesARestartOnDisk) {
  {
    MaskSchedule s(options());
    (void)s.set_targets({{"a.example", Endpoint{"10.0.0.1", 443}}});
    s.poll(1000);
    const auto r = settle(s, 1000);
    EXPECT_EQ(r.save_error, "");
  }
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/a.example.profile").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  fake_.s->fail = true;  // the mask is down after the restart
  MaskSchedule s(options());
  EXPECT_TRUE(s.set_targets({{"a.example", Endpoint{"10.0.0.1", 443}}}).empty());
  EXPECT_EQ(s.profile_for("a.example").measured_at, 1000);
  EXPECT_TRUE(s.poll(9000).changed);  // loaded: push it
  settle(s, 9000);
  EXPECT_EQ(s.profile_for("a.example").measured_at, 1000);  // the failed probe keeps it
}

TEST_F(MaskScheduleTest, UnreadableProfileFileIsReportedAndIgnored) {
  fs::create_directories(dir_);
  std::ofstream(dir_ + "/a.example.profile") << "mtw-tls-profile 1\nsource nonsense\n";
  MaskSchedule s(options());
  const auto problems = s.set_targets({{"a.example", Endpoint{"10.0.0.1", 443}}});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("a.example.profile"), std::string::npos) << problems[0];
  EXPECT_EQ(&s.profile_for("a.example"), &proto::builtin_profile());
}

TEST_F(MaskScheduleTest, ProfileOfAnotherDomainIsNotAdopted) {
  fs::create_directories(dir_);
  std::ofstream(dir_ + "/a.example.profile")
      << proto::format_profile(measured("b.example", 5, 900));
  MaskSchedule s(options());
  const auto problems = s.set_targets({{"a.example", Endpoint{"10.0.0.1", 443}}});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(&s.profile_for("a.example"), &proto::builtin_profile());
}

TEST_F(MaskScheduleTest, OneProbeAtATimeAndEveryTargetInTurn) {
  MaskSchedule s(options());
  (void)s.set_targets(
      {{"a.example", Endpoint{"10.0.0.1", 443}}, {"b.example", Endpoint{"10.0.0.2", 443}}});
  std::vector<std::string> events;
  for (int i = 0; i < 1000 && events.size() < 4; ++i) {
    const auto r = s.poll(1000);
    if (!r.finished.empty()) events.push_back("done " + r.finished);
    if (!r.started.empty()) events.push_back("start " + r.started);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  // The next one starts only in the poll that collects the previous one.
  EXPECT_EQ(events, (std::vector<std::string>{"start a.example", "done a.example",
                                              "start b.example", "done b.example"}));
  EXPECT_EQ(fake_.s->calls, 2);
  EXPECT_EQ(s.profile_for("b.example").domain, "b.example");
}

TEST_F(MaskScheduleTest, ChangedTargetIsProbedAgainAtOnce) {
  MaskSchedule s(options());
  (void)s.set_targets({{"a.example", Endpoint{"10.0.0.1", 443}}});
  s.poll(1000);
  settle(s, 1000);
  (void)s.set_targets({{"a.example", Endpoint{"10.0.0.5", 8443}}});
  EXPECT_EQ(s.poll(1001).started, "a.example");
  settle(s, 1001);
  EXPECT_EQ(fake_.s->last_host, "10.0.0.5");
  EXPECT_EQ(fake_.s->last_port, 8443);
}

TEST_F(MaskScheduleTest, ViewSaysBuiltinThenMeasuredThenStoredAfterARestart) {
  {
    MaskSchedule s(options());
    (void)s.set_targets({{"a.example", Endpoint{"10.0.0.1", 443}}});
    auto v = mask_profiles_view(&s, true, 1000);
    ASSERT_EQ(v.profiles.size(), 1u);
    EXPECT_TRUE(v.probing);
    EXPECT_EQ(v.profiles[0].origin, ProfileOrigin::kBuiltin);  // no profile yet
    EXPECT_EQ(v.profiles[0].age_s, -1);
    EXPECT_EQ(v.profiles[0].measured_at, 0);
    EXPECT_EQ(v.profiles[0].flight, proto::builtin_profile().encrypted_records);
    (void)s.poll(1000);
    (void)settle(s, 1000);
    v = mask_profiles_view(&s, true, 1600);
    EXPECT_EQ(v.profiles[0].origin, ProfileOrigin::kMeasured);
    EXPECT_EQ(v.profiles[0].measured_at, 1000);
    EXPECT_EQ(v.profiles[0].age_s, 600);
    EXPECT_EQ(v.profiles[0].target, "10.0.0.1:443");
    EXPECT_EQ(v.profiles[0].flight.size(), 4u);
    EXPECT_EQ(v.profiles[0].flight_wire.min, 4u * 5 + 36 + 1000 + 281 + 53);
  }
  // A new run reads the file: stored until a probe succeeds; a failed one keeps it stored.
  fake_.s->fail = true;
  MaskSchedule s(options());
  (void)s.set_targets({{"a.example", Endpoint{"10.0.0.1", 443}}});
  EXPECT_EQ(mask_profiles_view(&s, true, 2000).profiles[0].origin, ProfileOrigin::kStored);
  (void)s.poll(2000);
  (void)settle(s, 2000);
  const auto v = mask_profiles_view(&s, true, 2000);
  EXPECT_EQ(v.profiles[0].origin, ProfileOrigin::kStored);
  EXPECT_NE(v.profiles[0].last_error, "");
  EXPECT_EQ(v.profiles[0].age_s, 1000);
  fake_.s->fail = false;
  (void)s.poll(v.profiles[0].next_probe_at);
  (void)settle(s, v.profiles[0].next_probe_at);
  EXPECT_EQ(mask_profiles_view(&s, true, 5000).profiles[0].origin, ProfileOrigin::kMeasured);
  EXPECT_EQ(profile_origin_name(ProfileOrigin::kStored), "stored");
}

TEST(MaskProfilesView, NoScheduleNoEntries) {
  const auto v = mask_profiles_view(nullptr, false, 1000);
  EXPECT_FALSE(v.probing);
  EXPECT_TRUE(v.profiles.empty());
}

}  // namespace
}  // namespace mtw::supervisor
