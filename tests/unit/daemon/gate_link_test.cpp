// The gate, the supervisor's side: its command line, the table's content,
// generations and dirty flag, the restart decision on its exit, and what its
// control loop does with each message. Rootless: the gate's control socket
// is one end of a socketpair; no gate process is spawned.
#include "daemon/gate_link.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "ipc/control_socket.h"
#include "ipc/gate_table.h"
#include "proto/secret.h"

namespace mtw::daemon {
namespace {

namespace control = ipc::control;

const std::string kSecretA = "0123456789abcdef0123456789abcdef";
const std::string kSecretB = "fedcba9876543210fedcba9876543210";
const std::string kSecretC = "00112233445566778899aabbccddeeff";

class GateLinkTest : public ::testing::Test {
 protected:
  GateLinkTest()
      : link_(io_, cfg_, users_, {"/opt/mtw/mtwarden-gate", ""},
              {[this](const UserRt& u, supervisor::UnixSeconds) {
                 return std::find(unservable_.begin(), unservable_.end(), u.user.id) ==
                        unservable_.end();
               },
               [this] { ++users_changed_; },
               [this](control::GateHandoff h, base::UniqueFd fd) {
                 handoffs_.push_back(h.user);
                 handoff_fd_open_ = fd.get() >= 0;
               },
               [this](const control::GateDirect& d) { directs_ += d.entries.size(); },
               [this] { ++started_; }, [this] { ++gone_; },
               [this](std::string_view kind, std::string_view) { events_.emplace_back(kind); }}) {}

  ~GateLinkTest() override { link_.stop(); }

  UserRt& add(supervisor::UserId id, std::vector<std::string> secrets) {
    supervisor::StoredUser s;
    s.id = id;
    s.name = "u" + std::to_string(id);
    s.secrets = std::move(secrets);
    return users_.add(s, {});
  }

  // A gate whose control socket is one end of a socketpair (no process);
  // returns our end, the gate's side.
  base::UniqueFd adopt_gate() {
    int sp[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp), 0);
    gate_ = std::make_shared<ChildProc>(io_);
    gate_->ctl.assign(sp[0]);
    gate_->started = ipc::Clock::now();
    link_.adopt(gate_);
    return base::UniqueFd(sp[1]);
  }

  // Every message the gate has been sent so far, with its descriptor.
  static std::vector<std::pair<control::Message, base::UniqueFd>> received(
      const base::UniqueFd& fd) {
    std::vector<std::pair<control::Message, base::UniqueFd>> out;
    for (;;) {
      auto got = control::recv_datagram(fd.get(), true);
      if (!got || !*got) break;
      auto m = control::decode((*got)->bytes, (*got)->fds.size());
      EXPECT_TRUE(m) << m.error().to_string();
      if (!m) break;
      base::UniqueFd f;
      if (!(*got)->fds.empty()) f = std::move((*got)->fds.front());
      out.emplace_back(std::move(*m), std::move(f));
    }
    return out;
  }

  // The tables among `msgs`: generation and "user:secret" lines.
  static std::vector<std::pair<std::uint64_t, std::vector<std::string>>> tables(
      const std::vector<std::pair<control::Message, base::UniqueFd>>& msgs) {
    std::vector<std::pair<std::uint64_t, std::vector<std::string>>> out;
    for (const auto& [m, fd] : msgs) {
      const auto* t = std::get_if<control::GateTable>(&m);
      if (!t) continue;
      auto entries = ipc::read_gate_table(fd.get());
      EXPECT_TRUE(entries) << entries.error().to_string();
      std::vector<std::string> lines;
      if (entries) {
        for (const auto& e : *entries)
          lines.push_back(std::to_string(e.user) + ":" + proto::format_hex(e.secret));
      }
      std::sort(lines.begin(), lines.end());
      out.emplace_back(t->generation, std::move(lines));
    }
    return out;
  }

  static void send(const base::UniqueFd& fd, const control::Message& m, int attach = -1) {
    auto bytes = control::encode(m);
    ASSERT_TRUE(bytes);
    ASSERT_TRUE(control::send_datagram(fd.get(), *bytes, attach));
  }

  asio::io_context io_;
  supervisor::Config cfg_;
  UserRegistry users_;
  std::vector<supervisor::UserId> unservable_;
  int users_changed_ = 0;
  std::vector<std::uint32_t> handoffs_;
  bool handoff_fd_open_ = false;
  std::size_t directs_ = 0;
  int started_ = 0;
  int gone_ = 0;
  std::vector<std::string> events_;
  GateLink link_;
  std::shared_ptr<ChildProc> gate_;
};

std::vector<std::string> after(const std::vector<std::string>& argv, const std::string& flag) {
  std::vector<std::string> v;
  for (std::size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == flag) v.push_back(argv[i + 1]);
  return v;
}

TEST_F(GateLinkTest, ArgvPassesEachListenerAfterTheControlFdWithItsProtocols) {
  proto::AllowedProtocols tls_only{false, false, false, true};
  proto::AllowedProtocols classic{true, true, true, false};
  link_.add_listener(base::UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)), {});
  link_.add_listener(base::UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)), tls_only);
  link_.add_listener(base::UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)), classic);
  EXPECT_EQ(link_.listeners(), 3u);
  const auto a = link_.argv();
  ASSERT_GE(a.size(), 3u);
  EXPECT_EQ(a[0], "/opt/mtw/mtwarden-gate");
  EXPECT_EQ(after(a, "--control-fd"), std::vector<std::string>{"3"});
  EXPECT_EQ(after(a, "--listen-fd"),
            (std::vector<std::string>{"4:0:all", "5:1:tls", "6:2:abridged,intermediate,secure"}));
  EXPECT_TRUE(after(a, "--replay-fd").empty());  // added at spawn, when the file opens
}

TEST_F(GateLinkTest, ArgvFollowsTheConfigurationInForce) {
  cfg_.timeouts.handshake_ms = 7'500;
  cfg_.connections.per_ip_rate = 42;
  cfg_.connections.admission.source_handshakes = 9;
  cfg_.server.log_level = "debug";
  auto a = link_.argv();
  EXPECT_EQ(after(a, "--handshake-timeout"), std::vector<std::string>{"7500ms"});
  EXPECT_EQ(after(a, "--per-ip-rate"), std::vector<std::string>{"42"});
  EXPECT_EQ(after(a, "--source-handshakes"), std::vector<std::string>{"9"});
  EXPECT_EQ(after(a, "--log-level"), std::vector<std::string>{"debug"});
  EXPECT_TRUE(after(a, "--listen-fd").empty());
  cfg_.server.log_level = "warn";  // a reload: the next gate runs with it
  EXPECT_EQ(after(link_.argv(), "--log-level"), std::vector<std::string>{"warn"});
}

TEST(GateLinkOptions, TheCommandLineLogLevelWinsOverTheConfiguration) {
  asio::io_context io;
  supervisor::Config cfg;
  cfg.server.log_level = "info";
  UserRegistry users;
  GateLink link(io, cfg, users, {"/opt/mtw/mtwarden-gate", "trace"}, {});
  const auto a = link.argv();
  EXPECT_EQ(after(a, "--log-level"), std::vector<std::string>{"trace"});
}

TEST_F(GateLinkTest, ANewGateGetsTheServableUsersTableThenLanesThenAReportRequest) {
  add(1, {kSecretA, kSecretB});
  add(2, {kSecretC});
  add(3, {kSecretC});
  unservable_ = {3};
  auto peer = adopt_gate();
  EXPECT_EQ(started_, 1);
  EXPECT_EQ(users_changed_, 1);
  EXPECT_EQ(link_.generation(), 1u);
  EXPECT_FALSE(link_.table_dirty());
  const auto msgs = received(peer);
  ASSERT_EQ(msgs.size(), 2u);
  const auto t = tables(msgs);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].first, 1u);
  EXPECT_EQ(t[0].second,
            (std::vector<std::string>{"1:" + kSecretA, "1:" + kSecretB, "2:" + kSecretC}));
  EXPECT_TRUE(std::holds_alternative<control::ReportRequest>(msgs[1].first));
}

TEST_F(GateLinkTest, EachTableIsANewGenerationAndOnlyADirtyOneIsResent) {
  add(1, {kSecretA});
  auto peer = adopt_gate();
  (void)received(peer);
  link_.send_table_if_dirty();
  EXPECT_TRUE(received(peer).empty());
  add(2, {kSecretB});
  link_.table_changed();
  EXPECT_TRUE(link_.table_dirty());
  link_.send_table_if_dirty();
  EXPECT_FALSE(link_.table_dirty());
  const auto t = tables(received(peer));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].first, 2u);
  EXPECT_EQ(t[0].second, (std::vector<std::string>{"1:" + kSecretA, "2:" + kSecretB}));
  link_.send_table();  // asked for outright: sent even when clean
  EXPECT_EQ(tables(received(peer)).at(0).first, 3u);
}

TEST_F(GateLinkTest, ATableTheGateCouldNotTakeStaysDirty) {
  add(1, {kSecretA});
  auto peer = adopt_gate();
  peer.reset();  // the gate's end is gone: sends fail
  link_.table_changed();
  link_.send_table_if_dirty();
  EXPECT_TRUE(link_.table_dirty());
  EXPECT_EQ(users_changed_, 2);  // the domains are re-read even so
}

TEST_F(GateLinkTest, WithoutAGateNothingIsSentAndNothingStaysDirty) {
  add(1, {kSecretA});
  link_.table_changed();
  link_.send_table_if_dirty();
  EXPECT_FALSE(link_.table_dirty());  // the next gate gets the whole table at its start
  EXPECT_EQ(link_.generation(), 0u);
  EXPECT_EQ(users_changed_, 1);
  EXPECT_FALSE(link_.alive());
  EXPECT_FALSE(link_.send(control::ReportRequest{}));
}

TEST_F(GateLinkTest, ACrashIsCountedAndReportedAPlannedStopIsNot) {
  auto peer = adopt_gate();
  gate_->gone = true;
  link_.exited(gate_);
  EXPECT_EQ(gone_, 1);
  EXPECT_EQ(link_.restarts(), 1u);
  EXPECT_EQ(events_, std::vector<std::string>{"gate_restarted"});

  auto peer2 = adopt_gate();
  link_.terminate();  // a reload with new gate settings
  EXPECT_TRUE(gate_->stopping);
  gate_->gone = true;
  link_.exited(gate_);
  EXPECT_EQ(gone_, 2);
  EXPECT_EQ(link_.restarts(), 1u);
  EXPECT_EQ(events_.size(), 1u);
}

TEST_F(GateLinkTest, QuickCrashesBackOffAPlannedStopRestartsAtOnce) {
  // Before start() the policy has RestartPolicy's defaults: 250 ms, doubling.
  EXPECT_FALSE(link_.pending_restart());
  auto peer = adopt_gate();
  gate_->gone = true;
  link_.exited(gate_);
  EXPECT_EQ(link_.pending_restart(), std::chrono::milliseconds(250));
  auto peer2 = adopt_gate();  // as the timer would have
  gate_->gone = true;
  link_.exited(gate_);  // up for no time: the streak grows
  EXPECT_EQ(link_.pending_restart(), std::chrono::milliseconds(500));
  auto peer3 = adopt_gate();
  link_.terminate();
  gate_->gone = true;
  link_.exited(gate_);
  EXPECT_EQ(link_.pending_restart(), std::chrono::milliseconds(0));
  EXPECT_EQ(link_.restarts(), 2u);
  link_.stop();
  EXPECT_FALSE(link_.pending_restart());
}

TEST_F(GateLinkTest, AnOldGatesExitAndAnExitWhileStoppingRestartNothing) {
  auto peer = adopt_gate();
  const auto old = gate_;
  auto peer2 = adopt_gate();  // replaced, as after a restart
  old->gone = true;
  link_.exited(old);
  EXPECT_EQ(gone_, 0);
  EXPECT_EQ(link_.restarts(), 0u);

  link_.stop();
  gate_->gone = true;
  link_.exited(gate_);
  EXPECT_EQ(gone_, 1);  // its lanes go even so
  EXPECT_EQ(link_.restarts(), 0u);
  EXPECT_FALSE(link_.pending_restart());
  EXPECT_TRUE(events_.empty());
}

TEST_F(GateLinkTest, TheControlLoopPassesClientsAndBatchesOnAndKeepsReports) {
  auto peer = adopt_gate();
  (void)received(peer);
  EXPECT_FALSE(link_.ready());
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  base::UniqueFd client(sp[0]), other(sp[1]);
  control::GateHandoff h;
  h.user = 7;
  send(peer, h, client.get());
  control::GateDirect d;
  d.entries.resize(3);
  send(peer, d);
  control::Report r;
  r.seq = 1;
  r.counters.values[0] = 5;
  send(peer, r);
  io_.poll();
  EXPECT_EQ(handoffs_, std::vector<std::uint32_t>{7});
  EXPECT_TRUE(handoff_fd_open_);
  EXPECT_EQ(directs_, 3u);
  EXPECT_TRUE(link_.ready());
  ASSERT_NE(link_.child(), nullptr);
  EXPECT_EQ(link_.child()->report_seq, 1u);
  EXPECT_EQ(link_.child()->counters.values[0], 5u);
}

TEST_F(GateLinkTest, AMalformedMessageEndsTheControlLoop) {
  auto peer = adopt_gate();
  const std::uint8_t junk[] = {0xff, 0xff, 0xff};
  ASSERT_EQ(::send(peer.get(), junk, sizeof junk, 0), static_cast<ssize_t>(sizeof junk));
  control::Report r;
  r.seq = 1;
  send(peer, r);
  io_.poll();
  EXPECT_FALSE(link_.ready());  // nothing after the bad message was read
}

}  // namespace
}  // namespace mtw::daemon
