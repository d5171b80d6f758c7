#include "systemd/listen_fds.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include <gtest/gtest.h>

namespace mtw::systemd {
namespace {

using base::UniqueFd;

// A socket bound to host:0 (the kernel picks the port); listening if asked.
UniqueFd bound(int family, int type, const char* host, bool listen, std::uint16_t* port) {
  UniqueFd fd(::socket(family, type | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(fd.valid());
  sockaddr_storage ss{};
  socklen_t len;
  if (family == AF_INET) {
    auto& a = reinterpret_cast<sockaddr_in&>(ss);
    a.sin_family = AF_INET;
    EXPECT_EQ(::inet_pton(AF_INET, host, &a.sin_addr), 1);
    len = sizeof a;
  } else {
    auto& a = reinterpret_cast<sockaddr_in6&>(ss);
    a.sin6_family = AF_INET6;
    EXPECT_EQ(::inet_pton(AF_INET6, host, &a.sin6_addr), 1);
    len = sizeof a;
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    ADD_FAILURE() << "bind " << host << ": " << std::strerror(errno);
    return fd;
  }
  if (listen) {
    EXPECT_EQ(::listen(fd.get(), 4), 0);
  }
  len = sizeof ss;
  EXPECT_EQ(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len), 0);
  *port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in&>(ss).sin_port
                                  : reinterpret_cast<sockaddr_in6&>(ss).sin6_port);
  return fd;
}

bool open_fd(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

bool ipv6_loopback() {
  UniqueFd fd(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  return fd.valid() && ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

TEST(ListenFds, ClaimMatchesExactAddressAndPort) {
  std::uint16_t p4 = 0, p6 = 0;
  UniqueFd v4 = bound(AF_INET, SOCK_STREAM, "127.0.0.1", true, &p4);
  const int raw4 = v4.get();
  std::vector<UniqueFd> fds;
  fds.push_back(std::move(v4));
  int raw6 = -1;
  const bool have6 = ipv6_loopback();
  if (have6) {
    UniqueFd v6 = bound(AF_INET6, SOCK_STREAM, "::1", true, &p6);
    raw6 = v6.get();
    fds.push_back(std::move(v6));
  }
  ListenFds lf(std::move(fds));
  EXPECT_FALSE(lf.empty());

  // Near misses: another port, another address, the wildcard, a name.
  for (const proto::Endpoint& ep :
       {proto::Endpoint{"127.0.0.1", static_cast<std::uint16_t>(p4 + 1)},
        proto::Endpoint{"127.0.0.2", p4}, proto::Endpoint{"0.0.0.0", p4}, proto::Endpoint{"::", p4},
        proto::Endpoint{"::ffff:127.0.0.1", p4}, proto::Endpoint{"localhost", p4},
        proto::Endpoint{"", p4}}) {
    auto r = lf.claim(ep);
    ASSERT_TRUE(r.has_value()) << ep.host;
    EXPECT_FALSE(r->has_value()) << ep.host << ":" << ep.port;
  }
  auto c4 = lf.claim({"127.0.0.1", p4});
  ASSERT_TRUE(c4.has_value());
  ASSERT_TRUE(c4->has_value());
  EXPECT_EQ((*c4)->get(), raw4);
  // Claimed once: gone from the set.
  auto again = lf.claim({"127.0.0.1", p4});
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(again->has_value());
  if (have6) {
    auto c6 = lf.claim({"::1", p6});
    ASSERT_TRUE(c6.has_value());
    ASSERT_TRUE(c6->has_value());
    EXPECT_EQ((*c6)->get(), raw6);
    auto c6b = lf.claim({"0:0:0:0:0:0:0:1", p6});  // another spelling, already taken
    EXPECT_TRUE(c6b.has_value() && !c6b->has_value());
  }
  EXPECT_TRUE(lf.empty());
  EXPECT_TRUE(lf.release_unclaimed().empty());
  // The claimed socket still works: a client connects.
  UniqueFd cl(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(p4);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(cl.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
}

TEST(ListenFds, WildcardMatchesOnlyItself) {
  std::uint16_t p = 0;
  UniqueFd any = bound(AF_INET, SOCK_STREAM, "0.0.0.0", true, &p);
  std::vector<UniqueFd> fds;
  fds.push_back(std::move(any));
  ListenFds lf(std::move(fds));
  auto lo = lf.claim({"127.0.0.1", p});
  ASSERT_TRUE(lo.has_value());
  EXPECT_FALSE(lo->has_value());
  auto w = lf.claim({"0.0.0.0", p});
  ASSERT_TRUE(w.has_value());
  EXPECT_TRUE(w->has_value());
}

TEST(ListenFds, RefusesNonListeningAndUdpSockets) {
  std::uint16_t pt = 0, pu = 0;
  UniqueFd tcp = bound(AF_INET, SOCK_STREAM, "127.0.0.1", /*listen=*/false, &pt);
  UniqueFd udp = bound(AF_INET, SOCK_DGRAM, "127.0.0.1", false, &pu);
  const int raw_tcp = tcp.get(), raw_udp = udp.get();
  std::vector<UniqueFd> fds;
  fds.push_back(std::move(tcp));
  fds.push_back(std::move(udp));
  ListenFds lf(std::move(fds));
  auto r = lf.claim({"127.0.0.1", pt});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, base::Errc::kBadInput);
  EXPECT_NE(r.error().context.find("127.0.0.1:" + std::to_string(pt)), std::string::npos)
      << r.error().context;
  EXPECT_NE(r.error().context.find("not a listening TCP socket"), std::string::npos)
      << r.error().context;
  auto u = lf.claim({"127.0.0.1", pu});
  ASSERT_FALSE(u.has_value());
  EXPECT_EQ(u.error().code, base::Errc::kBadInput);
  // A refusal changes nothing: both are still there, and still open.
  EXPECT_FALSE(lf.empty());
  EXPECT_TRUE(open_fd(raw_tcp) && open_fd(raw_udp));
  const auto gone = lf.release_unclaimed();
  EXPECT_EQ(gone, (std::vector<std::string>{"127.0.0.1:" + std::to_string(pt),
                                            "127.0.0.1:" + std::to_string(pu)}));
  EXPECT_FALSE(open_fd(raw_tcp));
  EXPECT_FALSE(open_fd(raw_udp));
}

TEST(ListenFds, SamePortForStreamAndDatagramTakesTheStream) {
  std::uint16_t p = 0;
  UniqueFd tcp = bound(AF_INET, SOCK_STREAM, "127.0.0.1", true, &p);
  // A UDP socket on the same port (ListenDatagram= next to ListenStream=).
  UniqueFd udp(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(p);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(udp.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0)
      << std::strerror(errno);
  const int raw_tcp = tcp.get();
  std::vector<UniqueFd> fds;
  fds.push_back(std::move(udp));
  fds.push_back(std::move(tcp));
  ListenFds lf(std::move(fds));
  auto r = lf.claim({"127.0.0.1", p});
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->get(), raw_tcp);
  EXPECT_EQ(lf.release_unclaimed().size(), 1u);
}

TEST(ListenFds, ReleaseUnclaimedDescribesAndCloses) {
  std::uint16_t p4 = 0, p6 = 0;
  std::vector<UniqueFd> fds;
  fds.push_back(bound(AF_INET, SOCK_STREAM, "127.0.0.1", true, &p4));
  std::vector<std::string> want{"127.0.0.1:" + std::to_string(p4)};
  if (ipv6_loopback()) {
    fds.push_back(bound(AF_INET6, SOCK_STREAM, "::1", true, &p6));
    want.push_back("[::1]:" + std::to_string(p6));
  }
  // A unix socket with a path, an abstract one, and a pipe (not a socket).
  char dir[] = "/tmp/mtw-listen-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/s";
  UniqueFd un(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strcpy(sa.sun_path, path.c_str());
  ASSERT_EQ(::bind(un.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  fds.push_back(std::move(un));
  want.push_back("unix:" + path);
  UniqueFd ab(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un sb{};
  sb.sun_family = AF_UNIX;
  const std::string name = "mtw-listen-test-" + std::to_string(::getpid());
  std::memcpy(sb.sun_path + 1, name.data(), name.size());
  ASSERT_EQ(::bind(ab.get(), reinterpret_cast<sockaddr*>(&sb),
                   static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size())),
            0);
  fds.push_back(std::move(ab));
  want.push_back("unix:@" + name);
  int pp[2];
  ASSERT_EQ(::pipe2(pp, O_CLOEXEC), 0);
  UniqueFd keep_writer(pp[1]);
  fds.emplace_back(pp[0]);
  want.push_back("fd " + std::to_string(pp[0]));

  std::vector<int> raws;
  for (const auto& f : fds) raws.push_back(f.get());
  ListenFds lf(std::move(fds));
  EXPECT_EQ(lf.release_unclaimed(), want);
  for (int r : raws) EXPECT_FALSE(open_fd(r)) << r;
  EXPECT_TRUE(lf.empty());
  EXPECT_TRUE(lf.release_unclaimed().empty());
  ::unlink(path.c_str());
  ::rmdir(dir);
}

// take() reads $LISTEN_PID/$LISTEN_FDS: fds from 3 up, for this pid only.
class TakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Whatever the test runner keeps at fd 3 moves aside for the test.
    if (open_fd(3)) saved3_.reset(::fcntl(3, F_DUPFD_CLOEXEC, 20));
  }
  void TearDown() override {
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    if (saved3_.valid()) ::dup2(saved3_.get(), 3);
  }
  UniqueFd saved3_;
};

TEST_F(TakeTest, AdoptsPassedSocketsForThisPid) {
  std::uint16_t p = 0;
  UniqueFd s = bound(AF_INET, SOCK_STREAM, "127.0.0.1", true, &p);
  if (s.get() == 3) {
    (void)s.release();  // already where a passed fd would be
    ASSERT_EQ(::fcntl(3, F_SETFD, 0), 0);
  } else {
    ASSERT_EQ(::dup2(s.get(), 3), 3);  // dup2 clears FD_CLOEXEC, as for a passed fd
    s.reset();
  }
  ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
  ::setenv("LISTEN_FDS", "1", 1);
  ListenFds lf = ListenFds::take();
  EXPECT_EQ(::getenv("LISTEN_PID"), nullptr) << "children must not inherit the variables";
  EXPECT_EQ(::getenv("LISTEN_FDS"), nullptr);
  ASSERT_FALSE(lf.empty());
  EXPECT_EQ(::fcntl(3, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC)
      << "passed sockets must not leak to children";
  auto c = lf.claim({"127.0.0.1", p});
  ASSERT_TRUE(c.has_value() && c->has_value());
  EXPECT_EQ((*c)->get(), 3);
}

TEST_F(TakeTest, IgnoresVariablesForAnotherPidOrGarbage) {
  for (const auto& [pid, n] :
       {std::pair<std::string, std::string>{std::to_string(::getpid() == 1 ? 2 : 1), "1"},
        {"garbage", "1"},
        {std::to_string(::getpid()), "x"},
        {std::to_string(::getpid()), "0"},
        {"", ""}}) {
    ::setenv("LISTEN_PID", pid.c_str(), 1);
    ::setenv("LISTEN_FDS", n.c_str(), 1);
    ListenFds lf = ListenFds::take();
    EXPECT_TRUE(lf.empty()) << pid << " " << n;
    EXPECT_EQ(::getenv("LISTEN_FDS"), nullptr);
  }
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  EXPECT_TRUE(ListenFds::take().empty());
}

}  // namespace
}  // namespace mtw::systemd
