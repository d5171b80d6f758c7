#include "systemd/notify.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "base/unique_fd.h"

namespace mtw::systemd {
namespace {

using std::chrono::microseconds;

// A datagram socket standing in for the service manager's notify socket.
class ManagerSocket {
 public:
  explicit ManagerSocket(bool abstract = false) {
    fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    EXPECT_TRUE(fd_.valid());
    const int one = 1;
    EXPECT_EQ(::setsockopt(fd_.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one), 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    socklen_t len;
    if (abstract) {
      name_ = "@mtw-notify-test-" + std::to_string(::getpid());
      std::memcpy(sa.sun_path + 1, name_.data() + 1, name_.size() - 1);
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size());
    } else {
      char tmpl[] = "/tmp/mtw-notify-XXXXXX";
      dir_ = ::mkdtemp(tmpl);
      name_ = dir_ + "/notify";
      std::strcpy(sa.sun_path, name_.c_str());
      len = sizeof sa;
    }
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&sa), len), 0) << std::strerror(errno);
  }
  ~ManagerSocket() {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  const std::string& name() const { return name_; }
  void close() { fd_.reset(); }

  // The next datagram within `ms`, or "<none>"; records the sender's pid.
  std::string next(int ms = 1000) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, ms) != 1) return "<none>";
    char buf[4096];
    char ctl[CMSG_SPACE(sizeof(ucred))];
    iovec iov{buf, sizeof buf};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl;
    m.msg_controllen = sizeof ctl;
    const ssize_t n = ::recvmsg(fd_.get(), &m, 0);
    if (n < 0) return "<error>";
    sender_pid_ = -1;
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
        ucred cr{};
        std::memcpy(&cr, CMSG_DATA(c), sizeof cr);
        sender_pid_ = cr.pid;
      }
    }
    return std::string(buf, static_cast<std::size_t>(n));
  }
  pid_t sender_pid() const { return sender_pid_; }

 private:
  base::UniqueFd fd_;
  std::string dir_;
  std::string name_;
  pid_t sender_pid_ = -1;
};

class NotifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
  }
  void TearDown() override { SetUp(); }
};

TEST_F(NotifierTest, WithoutNotifySocketEverythingIsANoOp) {
  ::setenv("WATCHDOG_USEC", "600000", 1);
  Notifier n;
  EXPECT_FALSE(n.enabled());
  EXPECT_FALSE(n.watchdog_period().has_value());
  n.ready("x");
  n.status("y");
  n.watchdog();
  n.reloading();
  n.stopping("z");
  n.extend_timeout(microseconds(5));
  EXPECT_EQ(n.send_failures(), 0u);
  EXPECT_EQ(::getenv("WATCHDOG_USEC"), nullptr) << "children must not inherit the watchdog";
}

TEST_F(NotifierTest, ReadsOnceAndRemovesTheVariables) {
  ManagerSocket mgr;
  ::setenv("NOTIFY_SOCKET", mgr.name().c_str(), 1);
  ::setenv("WATCHDOG_USEC", "600000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  Notifier n;
  EXPECT_TRUE(n.enabled());
  EXPECT_EQ(::getenv("NOTIFY_SOCKET"), nullptr);
  EXPECT_EQ(::getenv("WATCHDOG_USEC"), nullptr);
  EXPECT_EQ(::getenv("WATCHDOG_PID"), nullptr);
  // Still notifies after the environment is gone.
  n.ready("1 user, 0 connections, 0 throttled");
  EXPECT_EQ(mgr.next(), "READY=1\nSTATUS=1 user, 0 connections, 0 throttled");
  EXPECT_EQ(mgr.sender_pid(), ::getpid()) << "the manager attributes datagrams by the sender's pid";
}

TEST_F(NotifierTest, EveryMessageKind) {
  ManagerSocket mgr;
  ::setenv("NOTIFY_SOCKET", mgr.name().c_str(), 1);
  Notifier n;
  n.watchdog();
  EXPECT_EQ(mgr.next(), "WATCHDOG=1");
  timespec before{};
  ::clock_gettime(CLOCK_MONOTONIC, &before);
  n.reloading();
  timespec after{};
  ::clock_gettime(CLOCK_MONOTONIC, &after);
  const std::string r = mgr.next();
  ASSERT_EQ(r.rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0u) << r;
  const auto usec = std::stoull(r.substr(std::strlen("RELOADING=1\nMONOTONIC_USEC=")));
  EXPECT_GE(usec, static_cast<unsigned long long>(before.tv_sec) * 1000000 + before.tv_nsec / 1000);
  EXPECT_LE(usec, static_cast<unsigned long long>(after.tv_sec) * 1000000 + after.tv_nsec / 1000);
  n.ready("back");
  EXPECT_EQ(mgr.next(), "READY=1\nSTATUS=back");
  n.extend_timeout(microseconds(15000000));
  EXPECT_EQ(mgr.next(), "EXTEND_TIMEOUT_USEC=15000000");
  n.extend_timeout(microseconds(0));  // meaningless: not sent
  n.stopping("draining 3 connections");
  EXPECT_EQ(mgr.next(), "STOPPING=1\nSTATUS=draining 3 connections");
  EXPECT_EQ(mgr.next(50), "<none>");
}

TEST_F(NotifierTest, StatusIsSentOnlyWhenItChanges) {
  ManagerSocket mgr;
  ::setenv("NOTIFY_SOCKET", mgr.name().c_str(), 1);
  Notifier n;
  n.ready("2 users, 0 connections, 0 throttled");
  EXPECT_EQ(mgr.next(), "READY=1\nSTATUS=2 users, 0 connections, 0 throttled");
  n.status("2 users, 0 connections, 0 throttled");  // what ready() said
  EXPECT_EQ(mgr.next(50), "<none>");
  n.status("2 users, 5 connections, 0 throttled");
  n.status("2 users, 5 connections, 0 throttled");
  n.status("2 users, 5 connections, 1 throttled");
  EXPECT_EQ(mgr.next(), "STATUS=2 users, 5 connections, 0 throttled");
  EXPECT_EQ(mgr.next(), "STATUS=2 users, 5 connections, 1 throttled");
  EXPECT_EQ(mgr.next(50), "<none>");
  // ready() always goes out, even with an unchanged status.
  n.ready("2 users, 5 connections, 1 throttled");
  EXPECT_EQ(mgr.next(), "READY=1\nSTATUS=2 users, 5 connections, 1 throttled");
}

TEST_F(NotifierTest, StatusCannotInjectAssignments) {
  ManagerSocket mgr;
  ::setenv("NOTIFY_SOCKET", mgr.name().c_str(), 1);
  Notifier n;
  n.status("bad\nREADY=1\r\tx");
  EXPECT_EQ(mgr.next(), "STATUS=bad READY=1  x");
  EXPECT_EQ(one_line(std::string("a\0b\x7f", 4)), "a b ");
}

TEST_F(NotifierTest, AbstractSocketAddress) {
  ManagerSocket mgr(/*abstract=*/true);
  ::setenv("NOTIFY_SOCKET", mgr.name().c_str(), 1);
  Notifier n;
  ASSERT_TRUE(n.enabled());
  n.watchdog();
  EXPECT_EQ(mgr.next(), "WATCHDOG=1");
}

TEST_F(NotifierTest, UnusableAddressesDisable) {
  for (const char* a : {"", "relative/notify", "vsock:2:1234", "@", "/"}) {
    ::setenv("NOTIFY_SOCKET", a, 1);
    Notifier n;
    EXPECT_FALSE(n.enabled()) << a;
    EXPECT_EQ(::getenv("NOTIFY_SOCKET"), nullptr) << a;
  }
  ::setenv("NOTIFY_SOCKET", ("/" + std::string(200, 'x')).c_str(), 1);  // over sun_path
  Notifier n;
  EXPECT_FALSE(n.enabled());
}

TEST_F(NotifierTest, ManagerGoneCountsFailuresWithoutThrowing) {
  auto mgr = std::make_unique<ManagerSocket>();
  ::setenv("NOTIFY_SOCKET", mgr->name().c_str(), 1);
  Notifier n;
  mgr.reset();  // socket closed and its path removed
  n.watchdog();
  n.watchdog();
  n.status("s");
  EXPECT_EQ(n.send_failures(), 3u);
}

struct WatchdogCase {
  const char* usec;
  const char* pid;      // "self", "other", or nullptr (unset)
  long long period_us;  // -1: no keep-alives
};

TEST_F(NotifierTest, WatchdogPeriodFromEnvironment) {
  const WatchdogCase cases[] = {
      {"600000", nullptr, 300000},     {"600000", "self", 300000}, {"600000", "other", -1},
      {"20000000", nullptr, 10000000}, {"0", nullptr, -1},         {"-5", nullptr, -1},
      {"12ms", nullptr, -1},           {"", nullptr, -1},          {nullptr, nullptr, -1},
      {"600000", "garbage", -1},
  };
  for (const auto& c : cases) {
    ManagerSocket mgr;
    ::setenv("NOTIFY_SOCKET", mgr.name().c_str(), 1);
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
    if (c.usec) ::setenv("WATCHDOG_USEC", c.usec, 1);
    if (c.pid) {
      std::string pid = c.pid;
      if (pid == "self") pid = std::to_string(::getpid());
      if (pid == "other") pid = std::to_string(::getpid() == 1 ? 2 : 1);
      ::setenv("WATCHDOG_PID", pid.c_str(), 1);
    }
    Notifier n;
    const std::string what =
        std::string("usec=") + (c.usec ? c.usec : "unset") + " pid=" + (c.pid ? c.pid : "unset");
    EXPECT_TRUE(n.enabled()) << what;
    if (c.period_us < 0) {
      EXPECT_FALSE(n.watchdog_period().has_value()) << what;
    } else {
      ASSERT_TRUE(n.watchdog_period().has_value()) << what;
      EXPECT_EQ(n.watchdog_period()->count(), c.period_us) << what;
    }
    EXPECT_EQ(::getenv("WATCHDOG_USEC"), nullptr) << what;
    EXPECT_EQ(::getenv("WATCHDOG_PID"), nullptr) << what;
  }
}

TEST(StatusLine, Format) {
  EXPECT_EQ(status_line(12, 340, 2, 0), "12 users, 340 connections, 2 throttled");
  EXPECT_EQ(status_line(0, 0, 0, 0), "0 users, 0 connections, 0 throttled");
  EXPECT_EQ(status_line(1, 1, 0, 0), "1 user, 1 connection, 0 throttled");
  EXPECT_EQ(status_line(3, 7, 0, 1), "3 users, 7 connections, 0 throttled, 1 failed");
  EXPECT_EQ(status_line(4294967295u, 0, 0, 4294967295u),
            "4294967295 users, 0 connections, 0 throttled, 4294967295 failed");
}

}  // namespace
}  // namespace mtw::systemd
