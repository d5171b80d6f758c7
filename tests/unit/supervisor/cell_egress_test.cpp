#include "supervisor/cell_egress.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <tuple>

namespace mtw::supervisor {
namespace {

using netns::EgressRule;
using netns::L4;

bool has(const std::vector<EgressRule>& rules, const EgressRule& r) {
  return std::find(rules.begin(), rules.end(), r) != rules.end();
}

bool has_ep(const std::vector<proto::Endpoint>& eps, const std::string& host, std::uint16_t port) {
  return std::find(eps.begin(), eps.end(), proto::Endpoint{host, port}) != eps.end();
}

Resolver no_names() {
  return [](const std::string& h) -> base::Result<std::vector<std::string>> {
    ADD_FAILURE() << "unexpected lookup of " << h;
    return base::fail(base::Errc::kNotFound, "unexpected");
  };
}

TEST(DcTableEndpoints, ProductionTableWithBothFamilies) {
  auto eps = dc_table_endpoints({});
  EXPECT_TRUE(has_ep(eps, "149.154.175.50", 443));
  EXPECT_TRUE(has_ep(eps, "95.161.76.100", 443));
  EXPECT_TRUE(has_ep(eps, "91.105.192.100", 443));  // DC 203
  EXPECT_TRUE(has_ep(eps, "2001:b28:f23d:f001::a", 443));
  EXPECT_EQ(eps.size(), 13u);  // 7 IPv4 (two for DC 2) + 6 IPv6
}

TEST(DcTableEndpoints, AnOverrideReplacesItsDcAndAddsItsAddress) {
  // Every index of DC 1..5 and 203 pointed at the fake DC, as the tests do:
  // nothing of the production table is reachable any more.
  std::vector<DcOverride> o;
  for (int dc : {1, 2, 3, 4, 5, -1, -2, -3, -4, -5, 203})
    o.push_back({static_cast<std::int16_t>(dc), {{"198.18.0.2", 4000}}});
  auto eps = dc_table_endpoints(o);
  ASSERT_EQ(eps.size(), 1u);
  EXPECT_EQ(eps[0], (proto::Endpoint{"198.18.0.2", 4000}));
}

TEST(DcTableEndpoints, MediaOverrideKeepsThePlainDc) {
  auto eps = dc_table_endpoints({{-2, {{"10.1.1.1", 8443}}}});
  EXPECT_TRUE(has_ep(eps, "10.1.1.1", 8443));
  EXPECT_TRUE(has_ep(eps, "149.154.167.51", 443));  // DC 2 itself is untouched
}

// The shortcut (plain indices and overridden ones) against every int16 index.
TEST(DcTableEndpoints, SameAsAskingEveryIndex) {
  const std::vector<std::vector<DcOverride>> cases = {{},
                                                      {{2, {{"10.0.0.2", 1}, {"fd00::2", 6}}},
                                                       {-4, {{"10.0.0.4", 2}}},
                                                       {10005, {{"10.0.0.5", 3}}},
                                                       {-32000, {{"10.9.9.9", 4}}},
                                                       {7, {{"10.0.0.7", 5}}}}};
  for (const auto& o : cases) {
    proto::DcTable table;
    for (const auto& d : o) table.set(d.dc, d.endpoints);
    std::vector<proto::Endpoint> all;
    for (int dc = -32768; dc <= 32767; ++dc) {
      for (const auto& e : table.lookup(static_cast<std::int16_t>(dc), false))
        if (!has_ep(all, e.host, e.port)) all.push_back(e);
    }
    auto got = dc_table_endpoints(o);
    auto key = [](const proto::Endpoint& a, const proto::Endpoint& b) {
      return std::tie(a.host, a.port) < std::tie(b.host, b.port);
    };
    std::sort(all.begin(), all.end(), key);
    std::sort(got.begin(), got.end(), key);
    EXPECT_EQ(got, all) << "overrides: " << o.size();
  }
}

TEST(CellEgress, DcsAndMaskFromTheConfiguration) {
  Config cfg;
  cfg.telegram.dc = {{2, {{"198.18.0.2", 4000}}}};
  cfg.mask.address = proto::Endpoint{"198.18.0.2", 8080};
  auto e = cell_egress(cfg);
  EXPECT_TRUE(has_ep(e.dcs, "198.18.0.2", 4000));
  EXPECT_TRUE(has_ep(e.dcs, "149.154.175.50", 443));  // DC 1 untouched
  ASSERT_EQ(e.mask.size(), 1u);
  EXPECT_EQ(e.mask[0].port, 8080);
  cfg.mask.address.reset();
  EXPECT_TRUE(cell_egress(cfg).mask.empty());
}

TEST(CellEgress, EveryMaskTargetAWorkerMayUseAndTheMiddleProxies) {
  Config cfg;
  EgressInputs in;
  in.fake_tls_domains = {"a.example", "B.example", "a.example"};
  in.middle_proxies = {{"149.154.175.50", 8888}, {"2001:b28:f23d:f001::d", 8888}};
  // No [mask] address: each domain masks to itself on 443.
  auto e = cell_egress(cfg, in);
  EXPECT_EQ(e.mask.size(), 2u);
  EXPECT_TRUE(has_ep(e.mask, "a.example", 443));
  EXPECT_TRUE(has_ep(e.mask, "b.example", 443));
  EXPECT_EQ(e.middle_proxies, in.middle_proxies);
  // A [mask.domains] entry routes its domain elsewhere; [mask] address the rest.
  cfg.mask.address = proto::Endpoint{"198.18.0.7", 8443};
  cfg.mask.domains = {{"a.example", proto::Endpoint{"198.18.0.8", 443}}};
  e = cell_egress(cfg, in);
  EXPECT_EQ(e.mask.size(), 2u);
  EXPECT_TRUE(has_ep(e.mask, "198.18.0.7", 8443));
  EXPECT_TRUE(has_ep(e.mask, "198.18.0.8", 443));
  // Masking off: workers mask nothing.
  cfg.mask.enabled = false;
  cfg.mask.address.reset();
  EXPECT_TRUE(cell_egress(cfg, in).mask.empty());
}

TEST(CellEgress, SocksUpstreamsAreReachableAndDirectOnesAddNothing) {
  Config cfg;
  UpstreamConfig dante;
  dante.name = "dante";
  dante.type = proto::UpstreamType::kSocks5;
  dante.address = {"198.18.0.9", 1080};
  UpstreamConfig old;
  old.name = "old";
  old.type = proto::UpstreamType::kSocks4;
  old.address = {"2001:db8::9", 1081};
  UpstreamConfig direct;
  direct.name = "direct";
  cfg.upstreams = {dante, old, direct};
  auto e = cell_egress(cfg);
  ASSERT_EQ(e.upstreams.size(), 2u);
  EXPECT_TRUE(has_ep(e.upstreams, "198.18.0.9", 1080));
  EXPECT_TRUE(has_ep(e.upstreams, "2001:db8::9", 1081));
}

TEST(PlanEgress, LiteralsNeedNoDns) {
  CellEgress e;
  e.dcs = {{"198.18.0.2", 4000}, {"2001:db8::2", 443}};
  e.mask = {{"198.18.0.2", 8080}};
  e.upstreams = {{"192.0.2.7", 1080}};
  auto p = plan_egress(e, no_names(), {"192.0.2.53"});
  EXPECT_FALSE(p.dns);
  EXPECT_EQ(p.rules, (std::vector<EgressRule>{{"192.0.2.7", L4::kTcp, 1080},
                                              {"198.18.0.2", L4::kTcp, 4000},
                                              {"198.18.0.2", L4::kTcp, 8080},
                                              {"2001:db8::2", L4::kTcp, 443}}));
}

TEST(PlanEgress, ANameIsResolvedAndOpensDnsToTheNameServers) {
  CellEgress e;
  e.mask = {{"mask.example", 443}, {"gone.example", 443}};
  auto resolve = [](const std::string& h) -> base::Result<std::vector<std::string>> {
    if (h == "mask.example") return std::vector<std::string>{"192.0.2.10", "2001:db8::10"};
    return base::fail(base::Errc::kNotFound, "getaddrinfo: Name or service not known");
  };
  auto p = plan_egress(e, resolve, {"192.0.2.53", "fe80::1%eth0"});
  EXPECT_TRUE(p.dns);
  EXPECT_TRUE(has(p.rules, {"192.0.2.10", L4::kTcp, 443}));
  EXPECT_TRUE(has(p.rules, {"2001:db8::10", L4::kTcp, 443}));
  EXPECT_TRUE(has(p.rules, {"192.0.2.53", L4::kUdp, 53}));
  EXPECT_TRUE(has(p.rules, {"192.0.2.53", L4::kTcp, 53}));
  EXPECT_EQ(p.rules.size(), 4u);  // the scoped name server is not a literal: left out
  ASSERT_EQ(p.unresolved.size(), 1u);
  EXPECT_EQ(p.unresolved[0].rfind("gone.example: ", 0), 0u);
}

TEST(ResolvConf, NameServersInOrder) {
  EXPECT_EQ(resolv_conf_nameservers("# comment\nsearch lan\nnameserver 192.0.2.1\n"
                                    "nameserver\t2001:db8::53 # second\n  nameserver 10.0.0.1\n"
                                    "nameservers 1.1.1.1\noptions edns0\n"),
            (std::vector<std::string>{"192.0.2.1", "2001:db8::53", "10.0.0.1"}));
  EXPECT_TRUE(resolv_conf_nameservers("").empty());
}

TEST(DropTally, IncrementsAndRestartedCounters) {
  DropTally t;
  auto a = t.update({{"mtw1", 5}, {"mtw2", 0}});
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].host_if, "mtw1");
  EXPECT_EQ(a[0].packets, 5u);
  EXPECT_TRUE(t.update({{"mtw1", 5}}).empty());
  auto b = t.update({{"mtw1", 7}, {"mtw2", 1}});
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].packets, 2u);
  EXPECT_EQ(b[1].packets, 1u);
  auto c = t.update({{"mtw1", 3}});  // the element expired and came back
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].packets, 3u);
}

struct Recorder {
  std::vector<std::vector<EgressRule>> applied;
  bool fail = false;
  EgressControl::Apply fn() {
    return [this](const std::vector<EgressRule>& r) -> base::Result<void> {
      if (fail) return base::fail(base::Errc::kNft, "nft: busy");
      applied.push_back(r);
      return {};
    };
  }
};

EgressPlan plan_of(std::vector<EgressRule> r) {
  EgressPlan p;
  p.rules = std::move(r);
  return p;
}

TEST(EgressControl, ReloadKeepsWhatOlderWorkersUseUntilTheyAreGone) {
  Recorder rec;
  EgressControl c(rec.fn());
  const EgressRule old_dc{"198.18.0.2", L4::kTcp, 4000}, new_dc{"198.18.0.2", L4::kTcp, 5000};
  ASSERT_TRUE(c.set(plan_of({old_dc})));
  const auto g1 = c.acquire();  // a worker started with the old table
  ASSERT_TRUE(c.set(plan_of({new_dc})));
  EXPECT_EQ(c.applied(), (std::vector<EgressRule>{old_dc, new_dc}));
  const auto g2 = c.acquire();
  EXPECT_NE(g1, g2);
  ASSERT_TRUE(c.release(g2));
  EXPECT_EQ(c.applied(), (std::vector<EgressRule>{old_dc, new_dc}));
  ASSERT_TRUE(c.release(g1));  // the last old worker is gone
  EXPECT_EQ(c.applied(), (std::vector<EgressRule>{new_dc}));
  EXPECT_EQ(rec.applied.size(), 3u);  // set, set, last release; nothing for no change
}

TEST(EgressControl, RefreshReplacesTheCurrentAddressesKeepingTheGeneration) {
  Recorder rec;
  EgressControl c(rec.fn());
  ASSERT_TRUE(c.set(plan_of({{"192.0.2.1", L4::kTcp, 443}})));
  const auto g = c.acquire();
  ASSERT_TRUE(c.refresh(plan_of({{"192.0.2.9", L4::kTcp, 443}})));
  EXPECT_EQ(c.generation(), g);
  EXPECT_EQ(c.applied(), (std::vector<EgressRule>{{"192.0.2.9", L4::kTcp, 443}}));
  ASSERT_TRUE(c.release(g));
  EXPECT_EQ(c.applied(), (std::vector<EgressRule>{{"192.0.2.9", L4::kTcp, 443}}));
}

TEST(EgressControl, UnheldOldGenerationLeavesAtOnce) {
  Recorder rec;
  EgressControl c(rec.fn());
  ASSERT_TRUE(c.set(plan_of({{"192.0.2.1", L4::kTcp, 443}})));
  ASSERT_TRUE(c.set(plan_of({{"192.0.2.2", L4::kTcp, 443}})));
  EXPECT_EQ(c.applied(), (std::vector<EgressRule>{{"192.0.2.2", L4::kTcp, 443}}));
}

TEST(EgressControl, AFailedApplyIsRetriedByTheNextChange) {
  Recorder rec;
  EgressControl c(rec.fn());
  ASSERT_TRUE(c.set(plan_of({{"192.0.2.1", L4::kTcp, 443}})));
  const auto g = c.acquire();
  rec.fail = true;
  EXPECT_FALSE(c.set(plan_of({{"192.0.2.2", L4::kTcp, 443}})));
  EXPECT_EQ(c.applied(), (std::vector<EgressRule>{{"192.0.2.1", L4::kTcp, 443}}));
  rec.fail = false;
  const auto g2 = c.acquire();
  ASSERT_TRUE(c.release(g2));  // same content as wanted, but pending: applied now
  EXPECT_EQ(c.applied(),
            (std::vector<EgressRule>{{"192.0.2.1", L4::kTcp, 443}, {"192.0.2.2", L4::kTcp, 443}}));
  ASSERT_TRUE(c.release(g));
  EXPECT_EQ(c.applied(), (std::vector<EgressRule>{{"192.0.2.2", L4::kTcp, 443}}));
}

TEST(DropLogLimiter, FirstAtOnceThenOneSumPerPeriod) {
  using Clock = DropLogLimiter::Clock;
  DropLogLimiter l(std::chrono::seconds(60));
  const auto t = Clock::now();
  EXPECT_EQ(l.add("alice", 3, t), 3u);
  EXPECT_EQ(l.add("alice", 4, t + std::chrono::seconds(1)), 0u);
  EXPECT_EQ(l.add("bob", 1, t + std::chrono::seconds(1)), 1u);
  EXPECT_TRUE(l.due(t + std::chrono::seconds(30)).empty());
  auto d = l.due(t + std::chrono::seconds(61));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0], (std::pair<std::string, std::uint64_t>{"alice", 4}));
  EXPECT_EQ(l.add("alice", 2, t + std::chrono::seconds(62)), 0u);
  EXPECT_EQ(l.add("alice", 2, t + std::chrono::seconds(122)), 4u);
}

}  // namespace
}  // namespace mtw::supervisor
