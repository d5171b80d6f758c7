#include "daemon/upstream_sync.h"

#include <gtest/gtest.h>

namespace mtw::daemon {
namespace {

using ipc::control::UpstreamReport;

UpstreamReport rep(std::string name, bool up, std::uint64_t failures = 0,
                   std::uint64_t marked_down = 0) {
  UpstreamReport r;
  r.name = std::move(name);
  r.up = up;
  r.failures = failures;
  r.marked_down = marked_down;
  return r;
}

TEST(UpstreamTransitions, StateChangesBetweenReportsAreTransitions) {
  const std::vector<UpstreamReport> before = {rep("dante", true), rep("micro", false, 3, 1)};
  const std::vector<UpstreamReport> after = {rep("dante", false, 3, 1), rep("micro", true, 3, 1)};
  const auto t = upstream_transitions(before, after);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0], (UpstreamTransition{"dante", false, 3, 1}));
  EXPECT_EQ(t[1], (UpstreamTransition{"micro", true, 3, 1}));
  EXPECT_STREQ(transition_kind(t[0]), "upstream_down");
  EXPECT_STREQ(transition_kind(t[1]), "upstream_up");
  EXPECT_EQ(transition_detail(t[0]), "upstream=dante failures=3 marked_down=1");
}

TEST(UpstreamTransitions, UnchangedStatesAndFreshNamesAreNone) {
  EXPECT_TRUE(upstream_transitions({rep("a", true, 1)}, {rep("a", true, 2)}).empty());
  EXPECT_TRUE(upstream_transitions({rep("a", false, 3, 1)}, {rep("a", false, 4, 1)}).empty());
  // An egress change brought "b", up and never marked down, and took "a".
  EXPECT_TRUE(upstream_transitions({rep("a", true)}, {rep("b", true, 2, 0)}).empty());
  EXPECT_TRUE(upstream_transitions({rep("a", true)}, {}).empty());
}

TEST(UpstreamTransitions, ANewNameAlreadyMarkedDownIsADownTransition) {
  // The egress message brought "b", which failed before the next report.
  const auto t = upstream_transitions({rep("a", true)}, {rep("b", false, 1, 1)});
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0], (UpstreamTransition{"b", false, 1, 1}));
  // A worker's first report (nothing before).
  EXPECT_EQ(upstream_transitions({}, {rep("c", false, 3, 1)}).size(), 1u);
}

TEST(UpstreamTransitions, ARoundTripBetweenReportsGivesBoth) {
  const auto down_up = upstream_transitions({rep("a", true, 0, 0)}, {rep("a", true, 3, 1)});
  ASSERT_EQ(down_up.size(), 2u);
  EXPECT_FALSE(down_up[0].up);
  EXPECT_TRUE(down_up[1].up);
  const auto up_down = upstream_transitions({rep("a", false, 3, 1)}, {rep("a", false, 6, 2)});
  ASSERT_EQ(up_down.size(), 2u);
  EXPECT_TRUE(up_down[0].up);
  EXPECT_FALSE(up_down[1].up);
}

TEST(EgressKey, DirectIsEmptyWhateverThePolicy) {
  proto::EgressSpec direct;
  direct.policy.failures = 9;
  EXPECT_EQ(egress_key(direct), "");
  proto::EgressSpec one = direct;
  proto::UpstreamSpec up;
  up.name = "dante";
  up.type = proto::UpstreamType::kSocks5;
  up.address = {"198.18.0.2", 1080};
  up.username = "alice";
  up.password = "alice";
  one.upstreams.push_back(up);
  EXPECT_EQ(egress_key(one), proto::format_egress(one));
  // A password change is a different egress (the worker must get it).
  proto::EgressSpec other = one;
  other.upstreams[0].password = "new";
  EXPECT_NE(egress_key(one), egress_key(other));
}

TEST(AssignmentOf, CarriesTheStoredListAndPassword) {
  supervisor::StoredUser u;
  EXPECT_EQ(assignment_of(u).upstreams, std::nullopt);
  u.upstreams = std::vector<std::string>{"a", "b"};
  u.upstream_password = "pw";
  const auto a = assignment_of(u);
  EXPECT_EQ(a.upstreams, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(a.password, "pw");
}

TEST(UpstreamView, EveryUpstreamWithItsUsersAndTheirWorkersReports) {
  supervisor::Config c;
  supervisor::UpstreamConfig dante;
  dante.name = "dante";
  dante.type = proto::UpstreamType::kSocks5;
  dante.address = {"198.18.0.2", 1080};
  dante.auth = supervisor::UpstreamAuth::kUserName;
  dante.weight = 3;
  supervisor::UpstreamConfig eth;
  eth.name = "eth1";
  eth.source4 = "203.0.113.7";
  eth.source6 = "2001:db8::7";
  c.upstreams = {dante, eth};
  c.egress.upstreams = {"dante"};
  UpstreamReport up = rep("dante", true);
  up.connects = 5;
  up.bytes_down = 1000;
  UpstreamReport down = rep("dante", false, 4, 1);
  down.connects = 2;
  const std::vector<UpstreamReport> first = {up};
  const std::vector<UpstreamReport> second = {down, rep("removed-at-reload", true)};
  const std::vector<UpstreamUse> uses = {
      {{std::nullopt, ""}, &first},                                // inherits [egress]: dante
      {{std::vector<std::string>{"dante"}, ""}, &second},          // names it
      {{std::vector<std::string>{}, ""}, nullptr},                 // direct, no worker
      {{std::vector<std::string>{"dante", "eth1"}, ""}, nullptr},  // both, no worker
  };
  const auto v = upstream_view(c, uses);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].name, "dante");
  EXPECT_EQ(v[0].type, "socks5");
  EXPECT_EQ(v[0].address, "198.18.0.2:1080");
  EXPECT_EQ(v[0].auth, "user-name");
  EXPECT_EQ(v[0].weight, 3u);
  EXPECT_EQ(v[0].users, 3u);
  EXPECT_EQ(v[0].workers_up, 1u);
  EXPECT_EQ(v[0].workers_down, 1u);
  EXPECT_EQ(v[0].connects, 7u);
  EXPECT_EQ(v[0].failures, 4u);
  EXPECT_EQ(v[0].marked_down, 1u);
  EXPECT_EQ(v[0].bytes_down, 1000u);
  EXPECT_EQ(v[1].type, "direct");
  EXPECT_EQ(v[1].address, "");
  EXPECT_EQ(v[1].source, "203.0.113.7,2001:db8::7");
  EXPECT_EQ(v[1].users, 1u);
  EXPECT_EQ(v[1].workers_up + v[1].workers_down, 0u);
}

}  // namespace
}  // namespace mtw::daemon
