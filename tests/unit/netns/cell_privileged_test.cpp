// Cells in the sandbox: reachability through NAT, isolation, permanent
// neighbour entries, error values, rollback, teardown and reconciliation
// after a crash.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/neighbour.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "netns/cell.h"
#include "netns/reconcile.h"
#include "tests/unit/netns/netns_fixture.h"

namespace mtw::netns::testing {
namespace {

using base::Errc;

const ShaperRates kFast{{1'000'000'000, 0}, {1'000'000'000, 0}};

std::unique_ptr<CellHost> open_host(const CellHostConfig& cfg) {
  auto rep = reconcile(cfg);
  EXPECT_TRUE(rep.has_value()) << rep.error().to_string();
  auto host = CellHost::open(cfg);
  EXPECT_TRUE(host.has_value()) << host.error().to_string();
  return host ? std::move(*host) : nullptr;
}

TEST(CellPrivileged, TwoCellsReachTheDcThroughNat) {
  MTW_REQUIRE_SANDBOX();
  ASSERT_GE(dc_netns_fd(), 0);
  auto host = open_host(test_config("mtwa"));
  ASSERT_TRUE(host);
  auto a = Cell::create(*host, "1", kFast);
  auto b = Cell::create(*host, "2", kFast);
  ASSERT_TRUE(a.has_value()) << a.error().to_string();
  ASSERT_TRUE(b.has_value()) << b.error().to_string();
  base::UniqueFd lst = listen_tcp(dc_netns_fd(), kDcAddr, 7001);
  ASSERT_TRUE(lst.valid());

  EXPECT_EQ(connect_from(*a, kDcAddr, 7001, 2000), kConnectOk);
  EXPECT_EQ(connect_from(*b, kDcAddr, 7001, 2000), kConnectOk);
  // The DC saw the sandbox's transit address, not 10.200.x.x: masquerade.
  for (int i = 0; i < 2; ++i) {
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    base::UniqueFd conn(
        ::accept4(lst.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC));
    ASSERT_TRUE(conn.valid());
    EXPECT_EQ(to_string(peer.sin_addr), kTransitRoot);
  }
}

TEST(CellPrivileged, CellReachesNeitherOtherCellNorHostServices) {
  MTW_REQUIRE_SANDBOX();
  ASSERT_GE(dc_netns_fd(), 0);
  auto host = open_host(test_config("mtwb"));
  ASSERT_TRUE(host);
  auto a = Cell::create(*host, "1", kFast);
  auto b = Cell::create(*host, "2", kFast);
  ASSERT_TRUE(a && b);
  // A service inside cell b, and one on every address of the sandbox root.
  std::string b_addr = to_string(b->addrs().cell4);
  auto b_ns = b->open_netns();
  ASSERT_TRUE(b_ns.has_value());
  base::UniqueFd in_b = listen_tcp(b_ns->get(), b_addr.c_str(), 7002);
  base::UniqueFd on_host = listen_tcp(-1, "0.0.0.0", 7003);
  ASSERT_TRUE(in_b.valid() && on_host.valid());
  std::string gw = to_string(a->addrs().host4);

  EXPECT_EQ(connect_from(*a, b_addr, 7002, 300), kConnectTimeout);        // cell -> cell
  EXPECT_EQ(connect_from(*a, gw, 7003, 300), kConnectTimeout);            // its own gateway
  EXPECT_EQ(connect_from(*a, kTransitRoot, 7003, 300), kConnectTimeout);  // other host address
  // 127.0.0.1 in a cell is the cell's own loopback: nothing listens there.
  EXPECT_EQ(connect_from(*a, "127.0.0.1", 7003, 300), kConnectRefused);
  // Controls: the services are real, and the DC is still reachable.
  EXPECT_EQ(connect_from(*b, b_addr, 7002, 1000), kConnectOk);
  base::UniqueFd dc = listen_tcp(dc_netns_fd(), kDcAddr, 7004);
  EXPECT_EQ(connect_from(*a, kDcAddr, 7004, 2000), kConnectOk);
}

// Neighbour entries of `sk`'s namespace for `dst`; on `ifindex` only if > 0.
std::vector<NeighInfo> neighs_to(NlSocket& sk, const std::string& dst, int ifindex = 0) {
  auto all = list_neighs(sk);
  EXPECT_TRUE(all.has_value()) << all.error().to_string();
  std::vector<NeighInfo> out;
  if (!all) return out;
  for (auto& n : *all) {
    if (n.dst == dst && (ifindex <= 0 || n.ifindex == ifindex)) out.push_back(n);
  }
  return out;
}

void expect_permanent(NlSocket& sk, int ifindex, const std::string& dst, const MacAddr& mac) {
  SCOPED_TRACE("neighbour " + dst + " on ifindex " + std::to_string(ifindex));
  auto n = neighs_to(sk, dst, ifindex);
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0].state, NUD_PERMANENT);
  ASSERT_TRUE(n[0].has_mac);
  EXPECT_EQ(n[0].mac, mac);
}

// A listening TCP socket on [ip]:port inside the cell.
base::UniqueFd listen_in_cell6(const Cell& cell, const in6_addr& ip, int port) {
  auto fd = cell.socket(AF_INET6, SOCK_STREAM);
  if (!fd) return base::UniqueFd();
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(static_cast<std::uint16_t>(port));
  sa.sin6_addr = ip;
  if (::bind(fd->get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return base::UniqueFd();
  if (::listen(fd->get(), 4) != 0) return base::UniqueFd();
  return std::move(*fd);
}

// One TCP connect from the sandbox root to `sa`; kConnect* result.
int connect_here(const sockaddr* sa, socklen_t len, int timeout_ms) {
  base::UniqueFd fd(::socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return kConnectError;
  if (::connect(fd.get(), sa, len) == 0) return kConnectOk;
  if (errno != EINPROGRESS) return errno == ECONNREFUSED ? kConnectRefused : kConnectError;
  pollfd p{fd.get(), POLLOUT, 0};
  if (::poll(&p, 1, timeout_ms) == 0) return kConnectTimeout;
  int err = 0;
  socklen_t elen = sizeof err;
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &elen);
  if (err == 0) return kConnectOk;
  return err == ECONNREFUSED ? kConnectRefused : kConnectError;
}

TEST(CellPrivileged, RestrictedEgressReachesOnlyTheSetsAndCountsDropsPerCell) {
  MTW_REQUIRE_SANDBOX();
  ASSERT_GE(dc_netns_fd(), 0);
  auto cfg = test_config("mtwe");
  cfg.restrict_egress = true;
  auto host = open_host(cfg);
  ASSERT_TRUE(host);
  auto a = Cell::create(*host, "1", kFast);
  auto b = Cell::create(*host, "2", kFast);
  ASSERT_TRUE(a && b);
  base::UniqueFd allowed = listen_tcp(dc_netns_fd(), kDcAddr, 7011);
  base::UniqueFd other = listen_tcp(dc_netns_fd(), kDcAddr, 7012);
  ASSERT_TRUE(allowed.valid() && other.valid());

  // Nothing allowed yet: everything a cell starts is dropped.
  EXPECT_EQ(connect_from(*a, kDcAddr, 7011, 300), kConnectTimeout);
  ASSERT_TRUE(host->set_egress({{kDcAddr, L4::kTcp, 7011}}).has_value());
  EXPECT_EQ(connect_from(*a, kDcAddr, 7011, 2000), kConnectOk);
  EXPECT_EQ(connect_from(*b, kDcAddr, 7011, 2000), kConnectOk);
  EXPECT_EQ(connect_from(*a, kDcAddr, 7012, 300), kConnectTimeout);  // same host, other port

  auto drops = host->egress_drops();
  ASSERT_TRUE(drops.has_value()) << drops.error().to_string();
  std::uint64_t a_drops = 0, b_drops = 0;
  for (const auto& d : *drops) {
    if (d.host_if == a->names().host_if) a_drops = d.packets;
    if (d.host_if == b->names().host_if) b_drops = d.packets;
  }
  EXPECT_GE(a_drops, 2u);  // a SYN each to 7011 (before) and 7012, plus retransmissions
  EXPECT_EQ(b_drops, 0u);

  // An established connection survives a set update that no longer allows
  // it (a listener of its own: 7011's backlog holds the probes above).
  base::UniqueFd kept = listen_tcp(dc_netns_fd(), kDcAddr, 7013);
  ASSERT_TRUE(kept.valid());
  ASSERT_TRUE(host->set_egress({{kDcAddr, L4::kTcp, 7011}, {kDcAddr, L4::kTcp, 7013}}).has_value());
  auto sock = a->socket(AF_INET, SOCK_STREAM);
  ASSERT_TRUE(sock.has_value());
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(7013);
  dst.sin_addr = ip4(kDcAddr);
  ASSERT_EQ(::connect(sock->get(), reinterpret_cast<sockaddr*>(&dst), sizeof dst), 0);
  base::UniqueFd conn(::accept4(kept.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(conn.valid());
  ASSERT_TRUE(host->set_egress({{kDcAddr, L4::kTcp, 7012}}).has_value());
  ASSERT_EQ(::send(sock->get(), "ping", 4, MSG_NOSIGNAL), 4);
  pollfd p{conn.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 2000), 1);
  char buf[8];
  EXPECT_EQ(::recv(conn.get(), buf, sizeof buf, 0), 4);
  EXPECT_EQ(connect_from(*a, kDcAddr, 7012, 2000), kConnectOk);
  EXPECT_EQ(connect_from(*a, kDcAddr, 7011, 300), kConnectTimeout);
  // Bad input changes nothing.
  EXPECT_EQ(host->set_egress({{"dc.example", L4::kTcp, 1}}).error().code, Errc::kBadInput);
  EXPECT_EQ(connect_from(*a, kDcAddr, 7012, 2000), kConnectOk);
}

TEST(CellPrivileged, OpenEgressHostRefusesEgressCalls) {
  MTW_REQUIRE_SANDBOX();
  auto host = open_host(test_config("mtwo"));
  ASSERT_TRUE(host);
  EXPECT_EQ(host->set_egress({}).error().code, Errc::kBadInput);
  EXPECT_EQ(host->egress_drops().error().code, Errc::kBadInput);
}

TEST(CellPrivileged, CellsCarryPermanentNeighbourEntries) {
  MTW_REQUIRE_SANDBOX();
  CellHostConfig cfg = test_config("mtwm");
  // Without the isolation table the sandbox root may talk to the cell over
  // both families, so each entry carries traffic in the checks below.
  cfg.manage_nft = false;
  auto host = open_host(cfg);
  ASSERT_TRUE(host);
  auto a = Cell::create(*host, "1", kFast);
  ASSERT_TRUE(a.has_value()) << a.error().to_string();
  const CellAddrs& ad = a->addrs();
  ASSERT_TRUE(ad.has_v6);
  auto nsfd = a->open_netns();
  ASSERT_TRUE(nsfd.has_value());
  auto inside = NlSocket::connect_in(nsfd->get());
  ASSERT_TRUE(inside.has_value());
  auto eth0 = link_index(*inside, "eth0");
  ASSERT_TRUE(eth0.has_value());
  auto host_mac = link_mac(host->nl(), a->host_ifindex());
  auto cell_mac = link_mac(*inside, *eth0);
  ASSERT_TRUE(host_mac && cell_mac);
  ASSERT_NE(*host_mac, *cell_mac);

  auto check_all = [&] {
    expect_permanent(host->nl(), a->host_ifindex(), to_string(ad.cell4), *cell_mac);
    expect_permanent(host->nl(), a->host_ifindex(), to_string(ad.cell6), *cell_mac);
    expect_permanent(*inside, *eth0, to_string(ad.host4), *host_mac);
    expect_permanent(*inside, *eth0, to_string(ad.host6), *host_mac);
  };
  check_all();

  // Traffic over each entry: root -> cell over IPv4 and IPv6. The SYN goes
  // from host4/host6 to the cell (host-side entries), the SYN-ACK back to
  // them (the cell's entries). NAT to the DC with entries in place is
  // TwoCellsReachTheDcThroughNat.
  base::UniqueFd in4 = listen_tcp(nsfd->get(), to_string(ad.cell4).c_str(), 7007);
  base::UniqueFd in6 = listen_in_cell6(*a, ad.cell6, 7007);
  ASSERT_TRUE(in4.valid() && in6.valid());
  sockaddr_in sa4{};
  sa4.sin_family = AF_INET;
  sa4.sin_port = htons(7007);
  sa4.sin_addr = ad.cell4;
  EXPECT_EQ(connect_here(reinterpret_cast<sockaddr*>(&sa4), sizeof sa4, 2000), kConnectOk);
  sockaddr_in6 sa6{};
  sa6.sin6_family = AF_INET6;
  sa6.sin6_port = htons(7007);
  sa6.sin6_addr = ad.cell6;
  EXPECT_EQ(connect_here(reinterpret_cast<sockaddr*>(&sa6), sizeof sa6, 2000), kConnectOk);
  check_all();  // traffic neither duplicated nor downgraded them

  // The kernel drops the entries along with the link.
  const std::string cell4 = to_string(ad.cell4), cell6 = to_string(ad.cell6);
  inside = NlSocket();  // nothing of ours may hold the namespace
  nsfd->reset();
  in4.reset();
  in6.reset();
  ASSERT_TRUE(a->destroy().has_value());
  EXPECT_TRUE(leftover_links_after("mtwm", 5000).empty());
  EXPECT_TRUE(neighs_to(host->nl(), cell4).empty());
  EXPECT_TRUE(neighs_to(host->nl(), cell6).empty());
}

TEST(CellPrivileged, RunInCellReportsExecErrors) {
  MTW_REQUIRE_SANDBOX();
  auto host = open_host(test_config("mtwr"));
  ASSERT_TRUE(host);
  auto a = Cell::create(*host, "1", kFast);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->run({"relative/path"}).error().code, Errc::kBadInput);
  EXPECT_EQ(a->run({"/nonexistent/program"}).error().code, Errc::kNotFound);
}

TEST(CellPrivileged, PoolExhaustionIsAnErrorAndLeavesNothing) {
  MTW_REQUIRE_SANDBOX();
  auto host = open_host(test_config("mtwp", "10.201.0.0/29"));  // room for 2 cells
  ASSERT_TRUE(host);
  auto a = Cell::create(*host, "1", kFast);
  auto b = Cell::create(*host, "2", kFast);
  ASSERT_TRUE(a && b);
  auto c = Cell::create(*host, "3", kFast);
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, Errc::kExhausted);
  EXPECT_EQ(leftover_netns("mtwp"), (std::vector<std::string>{"mtwp1", "mtwp2"}));
  EXPECT_EQ(leftover_links("mtwp").size(), 2u);
}

TEST(CellPrivileged, NameClashKeepsTheExistingCell) {
  MTW_REQUIRE_SANDBOX();
  auto host = open_host(test_config("mtwn"));
  ASSERT_TRUE(host);
  auto a = Cell::create(*host, "1", kFast);
  ASSERT_TRUE(a.has_value());
  auto again = Cell::create(*host, "1", kFast);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, Errc::kExists);
  EXPECT_NE(again.error().context.find("mtwn1"), std::string::npos);
  EXPECT_EQ(host->pool().in_use(), 1u);  // the failed create returned its slot
  EXPECT_TRUE(a->open_netns().has_value());
  EXPECT_EQ(leftover_links("mtwn"), std::vector<std::string>{"mtwn1"});
}

TEST(CellPrivileged, VethClashRollsBackTheNamespace) {
  MTW_REQUIRE_SANDBOX();
  auto host = open_host(test_config("mtwv"));
  ASSERT_TRUE(host);
  // Someone else's link squats the host-end name (its peer in a foreign netns).
  auto squat_ns = NamedNetns::create(kRunDir, "squat");
  ASSERT_TRUE(squat_ns.has_value());
  auto squat_fd = squat_ns->open();
  auto sk = NlSocket::connect();
  auto squat = Veth::create(*sk, "mtwvzz", "p0", squat_fd->get());
  ASSERT_TRUE(squat.has_value()) << squat.error().to_string();

  auto c = Cell::create(*host, "zz", kFast);
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, Errc::kExists);
  EXPECT_TRUE(leftover_netns("mtwv").empty());         // our netns rolled back
  EXPECT_TRUE(link_index(*sk, "mtwvzz").has_value());  // theirs untouched
  EXPECT_EQ(host->pool().in_use(), 0u);
}

TEST(CellPrivileged, TooLongNameIsBadInputAndCreatesNothing) {
  MTW_REQUIRE_SANDBOX();
  auto host = open_host(test_config("mtwl"));
  ASSERT_TRUE(host);
  auto c = Cell::create(*host, "abcdefghijklm", kFast);  // 4 + 13 = 17 > 15
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, Errc::kBadInput);
  EXPECT_TRUE(leftover_netns("mtwl").empty());
  EXPECT_EQ(host->pool().in_use(), 0u);
}

TEST(CellPrivileged, MissingNetAdminIsPermissionErrorAndRollsBack) {
  MTW_REQUIRE_SANDBOX();
  for (const char* what : {"cell", "host"}) {
    SCOPED_TRACE(what);
    int out[2];
    ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
    base::UniqueFd rd(out[0]), wr(out[1]);
    auto self_ns = base::UniqueFd(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
    SpawnOptions opts;
    opts.stdout_fd = wr.get();
    auto child = run_in_netns(
        self_ns.get(), {self_exe(), "--helper", "nocap", "mtwq", "mtwq_t", "10.202.0.0/16", what},
        opts);
    ASSERT_TRUE(child.has_value()) << child.error().to_string();
    wr.reset();
    auto rc = child->wait(10'000);
    char buf[512] = {};
    (void)!::read(rd.get(), buf, sizeof buf - 1);
    ASSERT_TRUE(rc.has_value());
    EXPECT_EQ(*rc, 0) << "helper said: " << buf;
    EXPECT_NE(std::string(buf).find("permission"), std::string::npos) << buf;
    EXPECT_TRUE(leftover_netns("mtwq").empty());
    EXPECT_TRUE(leftover_links("mtwq").empty());
    EXPECT_FALSE(*nft_table_exists("inet", "mtwq_t"));
  }
}

TEST(CellPrivileged, TeardownLeavesNoNetnsVethOrNftTable) {
  MTW_REQUIRE_SANDBOX();
  CellHostConfig cfg = test_config("mtwt");
  {
    auto host = open_host(cfg);
    ASSERT_TRUE(host);
    ASSERT_TRUE(*nft_table_exists("inet", cfg.nft_table));
    auto a = Cell::create(*host, "1", kFast);
    auto b = Cell::create(*host, "2", kFast);
    ASSERT_TRUE(a && b);
    ASSERT_TRUE(a->destroy().has_value());
    ASSERT_TRUE(a->destroy().has_value());  // idempotent
    EXPECT_EQ(leftover_netns("mtwt"), std::vector<std::string>{"mtwt2"});
    // b and the host go out of scope here.
  }
  EXPECT_TRUE(leftover_netns("mtwt").empty());
  // The veths go with their namespaces, in the kernel's own time.
  EXPECT_TRUE(leftover_links_after("mtwt", 5000).empty());
  EXPECT_FALSE(*nft_table_exists("inet", cfg.nft_table));
}

// Waits (bounded) until reap() has seen every retired host end gone.
bool reaped(CellHost& host, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    EXPECT_TRUE(host.reap().has_value());
    if (host.retiring() == 0) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

TEST(CellPrivileged, DestroyedCellKeepsItsSlotUntilItsHostEndIsGone) {
  MTW_REQUIRE_SANDBOX();
  auto host = open_host(test_config("mtwg", "10.204.0.0/29"));  // room for 2 cells
  ASSERT_TRUE(host);
  auto a = Cell::create(*host, "1", kFast);
  ASSERT_TRUE(a.has_value());
  ASSERT_EQ(a->addrs().slot, 0u);
  auto hold = a->open_netns();  // keeps the namespace, and so the veth, alive
  ASSERT_TRUE(hold.has_value());
  ASSERT_TRUE(a->destroy().has_value());
  EXPECT_TRUE(leftover_netns("mtwg").empty());
  EXPECT_EQ(leftover_links("mtwg"), std::vector<std::string>{"mtwg1"});
  EXPECT_EQ(host->retiring(), 1u);

  // Slot 0's addresses still sit on mtwg1: a new cell must not get them.
  auto b = Cell::create(*host, "2", kFast);
  ASSERT_TRUE(b.has_value()) << b.error().to_string();
  EXPECT_EQ(b->addrs().slot, 1u);
  auto c = Cell::create(*host, "3", kFast);
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, Errc::kExhausted);

  hold->reset();  // the namespace dies; the kernel deletes the pair
  ASSERT_TRUE(reaped(*host, 5000));
  EXPECT_EQ(leftover_links("mtwg"), std::vector<std::string>{"mtwg2"});
  c = Cell::create(*host, "3", kFast);
  ASSERT_TRUE(c.has_value()) << c.error().to_string();
  EXPECT_EQ(c->addrs().slot, 0u);
}

TEST(CellPrivileged, RecreateRightAfterDestroyReplacesOurStaleHostEnd) {
  MTW_REQUIRE_SANDBOX();
  ASSERT_GE(dc_netns_fd(), 0);
  auto host = open_host(test_config("mtwe"));
  ASSERT_TRUE(host);
  auto a = Cell::create(*host, "1", kFast);
  ASSERT_TRUE(a.has_value());
  const int old_ifindex = a->host_ifindex();
  auto hold = a->open_netns();  // the old host end is certainly still there
  ASSERT_TRUE(hold.has_value());
  ASSERT_TRUE(a->destroy().has_value());
  ASSERT_EQ(leftover_links("mtwe"), std::vector<std::string>{"mtwe1"});

  auto again = Cell::create(*host, "1", kFast);
  ASSERT_TRUE(again.has_value()) << again.error().to_string();
  EXPECT_NE(again->host_ifindex(), old_ifindex);
  EXPECT_EQ(host->retiring(), 0u);  // the stale end was deleted, its slot freed
  EXPECT_EQ(host->pool().in_use(), 1u);
  EXPECT_EQ(leftover_links("mtwe"), std::vector<std::string>{"mtwe1"});
  base::UniqueFd lst = listen_tcp(dc_netns_fd(), kDcAddr, 7005);
  ASSERT_TRUE(lst.valid());
  EXPECT_EQ(connect_from(*again, kDcAddr, 7005, 2000), kConnectOk);
}

TEST(CellPrivileged, HeldHostEndIsDeletedAfterTheRetireTimeout) {
  MTW_REQUIRE_SANDBOX();
  CellHostConfig cfg = test_config("mtwh");
  cfg.retire_timeout_ms = 200;
  auto host = open_host(cfg);
  ASSERT_TRUE(host);
  auto a = Cell::create(*host, "1", kFast);
  ASSERT_TRUE(a.has_value());
  auto hold = a->open_netns();  // e.g. a worker that did not die
  ASSERT_TRUE(hold.has_value());
  ASSERT_TRUE(a->destroy().has_value());
  ASSERT_TRUE(host->reap().has_value());
  EXPECT_EQ(host->retiring(), 1u);  // before the timeout: left to the kernel
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_TRUE(host->reap().has_value());
  EXPECT_EQ(host->retiring(), 0u);
  EXPECT_TRUE(leftover_links("mtwh").empty());  // deleted synchronously, netns still held
  EXPECT_EQ(host->pool().in_use(), 0u);
}

TEST(CellPrivileged, SweepReportsLiveCellsOnly) {
  MTW_REQUIRE_SANDBOX();
  auto host = open_host(test_config("mtws"));
  ASSERT_TRUE(host);
  auto a = Cell::create(*host, "1", kFast);
  auto b = Cell::create(*host, "2", kFast);
  ASSERT_TRUE(a && b);
  auto hold = b->open_netns();
  ASSERT_TRUE(hold.has_value());
  ASSERT_TRUE(b->destroy().has_value());  // its host end is still there
  std::vector<std::string> seen;
  ASSERT_TRUE(host->sweep([&](const std::string& n, const CellCounters&) { seen.push_back(n); })
                  .has_value());
  EXPECT_EQ(seen, std::vector<std::string>{"mtws1"});
}

TEST(CellPrivileged, ShaperLeafQueueIsSizedFromTheRateAndFollowsChanges) {
  MTW_REQUIRE_SANDBOX();
  auto host = open_host(test_config("mtwf"));
  ASSERT_TRUE(host);
  auto a = Cell::create(*host, "1", ShaperRates{{20'000'000, 0}, {20'000'000, 0, 500'000}});
  ASSERT_TRUE(a.has_value()) << a.error().to_string();
  auto nsfd = a->open_netns();
  auto inside = NlSocket::connect_in(nsfd->get());
  ASSERT_TRUE(inside.has_value());
  auto eth0 = link_index(*inside, "eth0");
  ASSERT_TRUE(eth0.has_value());
  // 100 ms at 20 Mbit/s (download, derived); explicit 500 kB (upload).
  EXPECT_EQ(*shaper_queue_limit(host->nl(), a->host_ifindex()), 250'000u);
  EXPECT_EQ(*shaper_queue_limit(*inside, *eth0), 500'000u);

  ASSERT_TRUE(a->set_rates({{5'000'000, 0}, {5'000'000, 0}}).has_value());
  // 100 ms at 5 Mbit/s is 62.5 kB, below one GSO packet: the floor applies.
  EXPECT_EQ(*shaper_queue_limit(host->nl(), a->host_ifindex()), kMaxGsoBytes);
  EXPECT_EQ(*shaper_queue_limit(*inside, *eth0), kMaxGsoBytes);
  EXPECT_EQ(a->set_rates({{5'000'000, 0, 1000}, {5'000'000, 0}}).error().code, Errc::kBadInput);
}

TEST(CellPrivileged, RateChangesEnterNoNamespace) {
  MTW_REQUIRE_SANDBOX();
  auto host = open_host(test_config("mtwr"));
  ASSERT_TRUE(host);
  auto a = Cell::create(*host, "1", ShaperRates{{20'000'000, 0}, {20'000'000, 0}});
  ASSERT_TRUE(a.has_value()) << a.error().to_string();
  const std::uint64_t before = in_netns_calls();
  for (std::uint64_t i = 1; i <= 10; ++i) {
    ASSERT_TRUE(a->set_rates({{i * 1'000'000, 0}, {i * 2'000'000, 0}}).has_value()) << i;
  }
  EXPECT_EQ(in_netns_calls(), before) << "a rate change started a thread entering the cell";
  // The cell-side (upload) shaper did change: read it from inside.
  auto nsfd = a->open_netns();
  auto inside = NlSocket::connect_in(nsfd->get());
  ASSERT_TRUE(inside.has_value());
  auto eth0 = link_index(*inside, "eth0");
  ASSERT_TRUE(eth0.has_value());
  // 100 ms at 20 Mbit/s = 250 kB: the queue follows the last upload rate.
  EXPECT_EQ(*shaper_queue_limit(*inside, *eth0), 250'000u);
  ASSERT_TRUE(a->destroy().has_value());
}

TEST(CellPrivileged, ReconcileRemovesCrashedRunLeftoversOnly) {
  MTW_REQUIRE_SANDBOX();
  CellHostConfig cfg = test_config("mtwc", "10.203.0.0/16");
  // Foreign objects that look similar but are not ours.
  auto keep_ns = NamedNetns::create(kRunDir, "keepns");
  ASSERT_TRUE(keep_ns.has_value());
  auto keep_fd = keep_ns->open();
  auto sk = NlSocket::connect();
  auto keep_veth = Veth::create(*sk, "mtwc-x", "p1", keep_fd->get());
  ASSERT_TRUE(keep_veth.has_value());
  ASSERT_TRUE(nft_run("add table inet keepme\n").has_value());

  // A run that gets SIGKILLed while creating cells.
  auto self_ns = base::UniqueFd(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
  auto child = run_in_netns(
      self_ns.get(), {self_exe(), "--helper", "crashy", cfg.prefix, cfg.nft_table, cfg.pool.v4});
  ASSERT_TRUE(child.has_value());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (leftover_netns(cfg.prefix).size() < 8 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(child->kill(SIGKILL).has_value());
  EXPECT_EQ(*child->wait(5000), 128 + SIGKILL);
  ASSERT_GE(leftover_netns(cfg.prefix).size(), 8u);
  ASSERT_TRUE(*nft_table_exists("inet", cfg.nft_table));

  auto rep = reconcile(cfg);
  ASSERT_TRUE(rep.has_value()) << rep.error().to_string();
  EXPECT_GE(rep->removed_netns.size(), 8u);
  EXPECT_GE(rep->removed_links.size(), 7u);  // the last netns may have died before its veth
  EXPECT_TRUE(rep->removed_nft_table);
  EXPECT_TRUE(leftover_netns(cfg.prefix).empty());
  EXPECT_TRUE(leftover_links(cfg.prefix).empty());
  EXPECT_FALSE(*nft_table_exists("inet", cfg.nft_table));
  // Not ours: still there.
  EXPECT_TRUE(link_index(*sk, "mtwc-x").has_value());
  EXPECT_TRUE(keep_ns->open().has_value());
  EXPECT_TRUE(*nft_table_exists("inet", "keepme"));
  ASSERT_TRUE(nft_delete_table("inet", "keepme").has_value());
  // And the next start works on the cleaned state.
  auto host = CellHost::open(cfg);
  ASSERT_TRUE(host.has_value());
  EXPECT_TRUE(Cell::create(**host, "0", kFast).has_value());
}

}  // namespace
}  // namespace mtw::netns::testing
