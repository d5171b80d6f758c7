// spawn() without privilege-specific checks: argv/env, fd layout, exec
// errors, Process lifetime. Runs as any user (the privileged confinement
// checks are in spawn_privileged_test.cpp).
#include "supervisor/spawn.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>

#include <gtest/gtest.h>

namespace mtw::supervisor {
namespace {

namespace fs = std::filesystem;

struct Pipe {
  base::UniqueFd r, w;
  Pipe() {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    r.reset(p[0]);
    w.reset(p[1]);
  }
};

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<std::size_t>(n));
  return out;
}

SpawnSpec base_spec(std::vector<std::string> argv) {
  SpawnSpec s;
  s.argv = std::move(argv);
  s.env = {"PATH=/usr/bin:/bin"};
  s.drop_capabilities = ::geteuid() == 0;  // dropping the bounding set needs CAP_SETPCAP
  return s;
}

// Runs spec with stdout on a pipe; returns (output, wait status).
std::pair<std::string, int> run(SpawnSpec s) {
  Pipe out;
  s.fds.push_back({out.w.get(), 1});
  auto p = spawn(s);
  EXPECT_TRUE(p) << p.error().to_string();
  if (!p) return {"", -1};
  out.w.reset();
  std::string text = read_all(out.r.get());
  auto st = p->wait(10'000);
  EXPECT_TRUE(st) << st.error().to_string();
  return {text, st ? *st : -1};
}

TEST(DescribeWaitStatus, NamesExitAndSignals) {
  EXPECT_EQ(describe_wait_status(0), "exited 0");
  EXPECT_EQ(describe_wait_status(3 << 8), "exited 3");
  EXPECT_EQ(describe_wait_status(SIGKILL), "killed by SIGKILL");
  EXPECT_EQ(describe_wait_status(SIGSEGV | 0x80), "killed by SIGSEGV (core dumped)");
  EXPECT_EQ(describe_wait_status((SIGSTOP << 8) | 0x7f), "stopped by SIGSTOP");
  EXPECT_EQ(describe_wait_status(0xffff), "continued");
}

TEST(Spawn, RejectsRelativeArgv0) {
  auto p = spawn(base_spec({"sh", "-c", "true"}));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, base::Errc::kBadInput);
}

TEST(Spawn, RejectsClosedSourceFd) {
  auto s = base_spec({"/bin/true"});
  s.fds.push_back({1'000'000 - 1, 3});
  auto p = spawn(s);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().sys_errno, EBADF);
}

TEST(Spawn, ReportsExitStatus) {
  auto [out, st] = run(base_spec({"/bin/sh", "-c", "echo hi; exit 3"}));
  EXPECT_EQ(out, "hi\n");
  EXPECT_EQ(describe_wait_status(st), "exited 3");
}

TEST(Spawn, PassesExactlyTheGivenEnvironment) {
  ::setenv("MTW_SPAWN_TEST_LEAK", "1", 1);
  auto s = base_spec({"/usr/bin/env"});
  s.env = {"A=1", "B=two words"};
  EXPECT_EQ(run(s).first, "A=1\nB=two words\n");
  s.env.clear();
  EXPECT_EQ(run(s).first, "");
}

// A terminal's Ctrl+C must reach only the supervisor: children lead their
// own session (and process group) unless asked otherwise.
TEST(Spawn, ChildLeadsItsOwnSessionByDefault) {
  // $$ is the shell's pid; field 6 of /proc/self/stat is the session id.
  auto [out, st] = run(base_spec({"/bin/sh", "-c", "echo $$ $(cut -d' ' -f6 /proc/$$/stat)"}));
  auto sp = out.find(' ');
  ASSERT_NE(sp, std::string::npos) << out;
  EXPECT_EQ(out.substr(0, sp), out.substr(sp + 1, out.size() - sp - 2)) << out;
  auto s = base_spec({"/bin/sh", "-c", "cut -d' ' -f6 /proc/$$/stat"});
  s.new_session = false;
  EXPECT_EQ(run(s).first, std::to_string(::getsid(0)) + "\n");
}

TEST(Spawn, PassesArgvVerbatim) {
  auto s = base_spec({"/bin/sh", "-c", "printf '%s|' \"$0\" \"$@\"", "zero", "a b", ""});
  EXPECT_EQ(run(s).first, "zero|a b||");
}

TEST(Spawn, MissingBinaryIsNotFoundNamingExec) {
  auto p = spawn(base_spec({"/nonexistent/mtw-worker"}));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, base::Errc::kNotFound);
  EXPECT_EQ(p.error().sys_errno, ENOENT);
  EXPECT_NE(p.error().context.find("execve"), std::string::npos) << p.error().to_string();
}

TEST(Spawn, NonExecutableIsPermission) {
  char path[] = "/tmp/mtw-spawn-noexec-XXXXXX";
  base::UniqueFd fd(::mkstemp(path));
  ASSERT_TRUE(fd);
  auto p = spawn(base_spec({path}));
  ::unlink(path);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, base::Errc::kPermission) << p.error().to_string();
}

// Child fds: exactly 0, 1, 2 and the listed targets; 0/2 on /dev/null.
TEST(Spawn, FdLayoutClosesEverythingElse) {
  Pipe in, extra;
  base::UniqueFd leak(::open("/dev/null", O_RDONLY));  // not CLOEXEC: must not reach the child
  ASSERT_TRUE(leak);
  auto s = base_spec({"/bin/cat"});
  s.fds = {{in.r.get(), 0}, {extra.w.get(), 3}, {extra.w.get(), 4}};
  auto p = spawn(s);
  ASSERT_TRUE(p) << p.error().to_string();
  const fs::path dir = "/proc/" + std::to_string(p->pid()) + "/fd";
  // spawn() returns at exec; cat's dynamic loader then opens and closes
  // libraries for a moment. Wait for the steady state (a leaked fd never
  // goes away, so this still fails on a leak).
  const std::set<std::string> want_fds{"0", "1", "2", "3", "4"};
  std::set<std::string> fds;
  for (int i = 0; i < 200; ++i) {
    fds.clear();
    for (auto& e : fs::directory_iterator(dir)) fds.insert(e.path().filename().string());
    if (fds == want_fds) break;
    ::usleep(10'000);
  }
  EXPECT_EQ(fds, want_fds);
  struct stat want {
  }, got3{}, got4{}, got0{};
  ASSERT_EQ(::fstat(extra.w.get(), &want), 0);
  ASSERT_EQ(::stat((dir / "3").c_str(), &got3), 0);
  ASSERT_EQ(::stat((dir / "4").c_str(), &got4), 0);
  ASSERT_EQ(::stat((dir / "0").c_str(), &got0), 0);
  EXPECT_EQ(got3.st_ino, want.st_ino);
  EXPECT_EQ(got4.st_ino, want.st_ino);
  struct stat in_st {};
  ASSERT_EQ(::fstat(in.r.get(), &in_st), 0);
  EXPECT_EQ(got0.st_ino, in_st.st_ino);
  EXPECT_EQ(fs::read_symlink(dir / "1"), "/dev/null");
  EXPECT_EQ(fs::read_symlink(dir / "2"), "/dev/null");
  in.w.reset();  // EOF: cat exits
  auto st = p->wait(10'000);
  ASSERT_TRUE(st);
  EXPECT_EQ(describe_wait_status(*st), "exited 0");
}

// Sources whose numbers are other entries' targets (a swap): each target
// must get the right source, not one already overwritten.
TEST(Spawn, FdLayoutHandlesOverlappingNumbers) {
  Pipe a, b;
  // Put the write ends at 8 and 9 exactly, then map 8->9 and 9->8.
  ASSERT_LT(::fcntl(8, F_GETFD), 0) << "fd 8 in use";
  ASSERT_LT(::fcntl(9, F_GETFD), 0) << "fd 9 in use";
  ASSERT_GE(::dup3(a.w.get(), 8, O_CLOEXEC), 0);
  ASSERT_GE(::dup3(b.w.get(), 9, O_CLOEXEC), 0);
  base::UniqueFd fd5(8), fd6(9);
  auto s = base_spec({"/bin/sh", "-c", "echo to-a >&9; echo to-b >&8"});
  s.fds = {{8, 9}, {9, 8}};
  auto p = spawn(s);
  ASSERT_TRUE(p) << p.error().to_string();
  a.w.reset();
  b.w.reset();
  fd5.reset();
  fd6.reset();
  EXPECT_EQ(read_all(a.r.get()), "to-a\n");
  EXPECT_EQ(read_all(b.r.get()), "to-b\n");
  ASSERT_TRUE(p->wait(10'000));
}

TEST(Process, WaitTimesOutThenKillReports) {
  auto p = spawn(base_spec({"/bin/sleep", "30"}));
  ASSERT_TRUE(p) << p.error().to_string();
  auto w = p->wait(50);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, base::Errc::kTimeout);
  auto r = p->try_reap();
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->has_value());
  EXPECT_TRUE(p->valid());
  ASSERT_TRUE(p->kill(SIGTERM));
  auto st = p->wait(10'000);
  ASSERT_TRUE(st);
  EXPECT_EQ(describe_wait_status(*st), "killed by SIGTERM");
  EXPECT_FALSE(p->valid());
  EXPECT_TRUE(p->kill(SIGTERM));  // gone: still success
}

TEST(Process, TryReapCollectsExitedChild) {
  auto p = spawn(base_spec({"/bin/true"}));
  ASSERT_TRUE(p) << p.error().to_string();
  const pid_t pid = p->pid();
  std::optional<int> st;
  for (int i = 0; i < 1000 && !st; ++i) {
    auto r = p->try_reap();
    ASSERT_TRUE(r) << r.error().to_string();
    st = *r;
    if (!st) ::usleep(5'000);
  }
  ASSERT_TRUE(st);
  EXPECT_EQ(describe_wait_status(*st), "exited 0");
  EXPECT_FALSE(p->valid());
  EXPECT_FALSE(fs::exists("/proc/" + std::to_string(pid)));  // reaped: no zombie
}

TEST(Process, DestructorKillsAndReaps) {
  pid_t pid;
  {
    auto p = spawn(base_spec({"/bin/sleep", "30"}));
    ASSERT_TRUE(p) << p.error().to_string();
    pid = p->pid();
    ASSERT_TRUE(fs::exists("/proc/" + std::to_string(pid)));
  }
  EXPECT_FALSE(fs::exists("/proc/" + std::to_string(pid)));
}

TEST(Process, MoveAssignKillsThePreviousChild) {
  auto a = spawn(base_spec({"/bin/sleep", "30"}));
  auto b = spawn(base_spec({"/bin/sleep", "30"}));
  ASSERT_TRUE(a && b);
  const pid_t pid_a = a->pid(), pid_b = b->pid();
  *a = std::move(*b);
  EXPECT_FALSE(fs::exists("/proc/" + std::to_string(pid_a)));
  EXPECT_EQ(a->pid(), pid_b);
  EXPECT_FALSE(b->valid());
}

TEST(Process, PidfdBecomesReadableOnExit) {
  auto p = spawn(base_spec({"/bin/true"}));
  ASSERT_TRUE(p) << p.error().to_string();
  pollfd pfd{p->pidfd(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 10'000), 1);
  auto r = p->try_reap();
  ASSERT_TRUE(r && r->has_value());
}

}  // namespace
}  // namespace mtw::supervisor
