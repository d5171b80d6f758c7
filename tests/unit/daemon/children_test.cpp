// The one adopt and reap path of the gate and the workers, rootless: real
// children (spawn() without a uid change), the loop never waits in wait(2).
#include "daemon/children.h"

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace mtw::daemon {
namespace {

struct Spawned {
  Process proc;
  base::UniqueFd ours;  // the control socket's parent end
  base::UniqueFd theirs;
};

// /bin/sh -c `script` with one end of a SOCK_SEQPACKET pair as its fd 3.
Spawned spawn_sh(const std::string& script) {
  int sp[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
  Spawned s{{}, base::UniqueFd(sp[0]), base::UniqueFd(sp[1])};
  supervisor::SpawnSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.drop_capabilities = ::geteuid() == 0;
  spec.fds = {{s.theirs.get(), 3}, {STDERR_FILENO, 2}};
  auto p = supervisor::spawn(spec);
  EXPECT_TRUE(p) << p.error().to_string();
  if (p) s.proc = std::move(*p);
  return s;
}

TEST(Children, AnExitedChildIsReapedOnTheLoopAndReportedOnce) {
  asio::io_context io;
  Spawned s = spawn_sh("exit 3");
  const pid_t pid = s.proc.pid();
  int calls = 0, status = -1;
  std::shared_ptr<ChildProc> seen;
  auto c = adopt_child(io, std::move(s.proc), std::move(s.ours),
                       [&](const std::shared_ptr<ChildProc>& child, int st) {
                         ++calls;
                         status = st;
                         seen = child;
                       });
  EXPECT_EQ(c->pid, pid);
  EXPECT_FALSE(c->gone);
  io.run_for(std::chrono::seconds(10));
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3);
  EXPECT_EQ(seen, c);
  EXPECT_TRUE(c->gone);
  EXPECT_FALSE(c->proc.valid());  // reaped: no zombie left
  EXPECT_FALSE(c->ctl.is_open());
  EXPECT_FALSE(c->exit_watch.is_open());
}

TEST(Children, AKilledChildIsReportedWithItsSignal) {
  asio::io_context io;
  Spawned s = spawn_sh("sleep 30");
  int status = -1;
  auto c = adopt_child(io, std::move(s.proc), std::move(s.ours),
                       [&](const std::shared_ptr<ChildProc>&, int st) { status = st; });
  ASSERT_TRUE(c->proc.kill(SIGKILL));
  io.run_for(std::chrono::seconds(10));
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST(Children, ARunningChildIsNotReported) {
  asio::io_context io;
  Spawned s = spawn_sh("sleep 30");
  int calls = 0;
  auto c = adopt_child(io, std::move(s.proc), std::move(s.ours),
                       [&](const std::shared_ptr<ChildProc>&, int) { ++calls; });
  io.run_for(std::chrono::milliseconds(200));
  EXPECT_EQ(calls, 0);
  EXPECT_FALSE(c->gone);
  ASSERT_TRUE(c->proc.kill(SIGKILL));
  io.run_for(std::chrono::seconds(10));
  EXPECT_EQ(calls, 1);
}

TEST(Children, SendToAReleasedChildFailsWithNotFound) {
  asio::io_context io;
  Spawned s = spawn_sh("sleep 30");
  auto c = adopt_child(io, std::move(s.proc), std::move(s.ours),
                       [](const std::shared_ptr<ChildProc>&, int) {});
  EXPECT_TRUE(send_to(*c, ipc::control::ReportRequest{}));
  (void)c->proc.kill(SIGKILL);
  release_child(*c);
  auto r = send_to(*c, ipc::control::ReportRequest{});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, base::Errc::kNotFound);
  (void)c->proc.wait(10'000);
}

}  // namespace
}  // namespace mtw::daemon
