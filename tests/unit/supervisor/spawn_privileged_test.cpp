// Confinement of spawned children, as root inside the netns sandbox
// (tests/unit/netns/sandbox.cpp main(): own network + mount namespace;
// skips when not root). Touches no cgroup: cgroup.procs is faked by a pipe.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "supervisor/mount_view.h"
#include "supervisor/spawn.h"
#include "tests/unit/netns/sandbox.h"

namespace mtw::supervisor {
namespace {

namespace fs = std::filesystem;
constexpr uid_t kUid = 200123;

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

std::map<std::string, std::string> proc_status(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::map<std::string, std::string> m;
  for (std::string line; std::getline(in, line);) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto v = line.substr(colon + 1);
    v.erase(0, v.find_first_not_of(" \t"));
    m[line.substr(0, colon)] = v;
  }
  return m;
}

SpawnSpec worker_spec(std::vector<std::string> argv) {
  SpawnSpec s;
  s.argv = std::move(argv);
  s.env = {"PATH=/usr/bin:/bin"};
  s.uid = kUid;
  return s;
}

std::pair<std::string, int> run(SpawnSpec s) {
  Pipe out;
  s.fds.push_back({out.w.get(), 1});
  auto p = spawn(s);
  EXPECT_TRUE(p) << p.error().to_string();
  if (!p) return {"", -1};
  out.w.reset();
  std::string text = read_all(out.r.get());
  auto st = p->wait(20'000);
  EXPECT_TRUE(st) << st.error().to_string();
  return {text, st ? *st : -1};
}

ino_t inode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

class SpawnPrivileged : public ::testing::Test {
 protected:
  void SetUp() override { MTW_REQUIRE_SANDBOX(); }
};

TEST_F(SpawnPrivileged, DropsToUidWithNoGroupsNoCapsNoNewPrivs) {
  Pipe in;
  auto s = worker_spec({"/bin/cat"});
  s.fds = {{in.r.get(), 0}};
  auto p = spawn(s);
  ASSERT_TRUE(p) << p.error().to_string();
  auto st = proc_status(p->pid());
  const std::string ids = "200123\t200123\t200123\t200123";
  EXPECT_EQ(st["Uid"], ids);
  EXPECT_EQ(st["Gid"], ids);
  EXPECT_EQ(st["Groups"], "");
  for (const char* k : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    EXPECT_EQ(st[k], "0000000000000000") << k;
  }
  EXPECT_EQ(st["NoNewPrivs"], "1");
  in.w.reset();
  auto w = p->wait(10'000);
  ASSERT_TRUE(w);
  EXPECT_EQ(describe_wait_status(*w), "exited 0");
}

// Control: without the drops the child keeps root's caps (the test above can fail).
TEST_F(SpawnPrivileged, WithoutDropsChildKeepsCaps) {
  Pipe in;
  SpawnSpec s;
  s.argv = {"/bin/cat"};
  s.drop_capabilities = false;
  s.no_new_privs = false;
  s.fds = {{in.r.get(), 0}};
  auto p = spawn(s);
  ASSERT_TRUE(p) << p.error().to_string();
  auto st = proc_status(p->pid());
  EXPECT_NE(st["CapEff"], "0000000000000000");
  EXPECT_EQ(st["NoNewPrivs"], "0");
}

TEST_F(SpawnPrivileged, ExplicitGidDiffersFromUid) {
  auto s = worker_spec({"/usr/bin/id"});
  s.gid = 200124;
  EXPECT_EQ(run(s).first, "uid=200123 gid=200124 groups=200124\n");
}

TEST_F(SpawnPrivileged, AppliesRlimitNofileAndData) {
  auto s = worker_spec({"/bin/sh", "-c", "ulimit -n; ulimit -d"});
  s.nofile = 77;
  s.rlimit_data_bytes = 64ull << 20;
  auto [out, st] = run(s);
  EXPECT_EQ(out, "77\n65536\n");  // ulimit -d prints KiB
  EXPECT_EQ(describe_wait_status(st), "exited 0");
}

TEST_F(SpawnPrivileged, RlimitNprocStopsForkBeyondTheBound) {
  auto forked = [](std::uint64_t nproc) {
    auto s = worker_spec({"/bin/sh", "-c", "/bin/true && echo forked"});
    s.nproc = nproc;
    return run(s).first;
  };
  // The shell itself is the uid's one process: its child is refused.
  EXPECT_EQ(forked(1), "");
  EXPECT_EQ(forked(2), "forked\n");
}

// The workers' mount view (mount_view.h) entered through mountns_fd: the
// hidden directory is an empty tmpfs for the child, the host still sees the
// file, and a missing directory is skipped.
TEST_F(SpawnPrivileged, MountViewHidesDirectoriesOnlyForTheChild) {
  char tmpl[] = "/tmp/mtw-hide-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl, file = dir + "/secret";
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
  {
    std::FILE* f = std::fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("s3cret\n", f);
    std::fclose(f);
    ASSERT_EQ(::chmod(file.c_str(), 0644), 0);
  }
  auto view = make_mount_view({dir, "/nonexistent-mtw-dir"}, {});
  ASSERT_TRUE(view) << view.error().to_string();
  auto reads = [&](int mountns_fd) {
    auto s = worker_spec({"/bin/sh", "-c", "cat " + file + "; echo rc=$?"});
    s.mountns_fd = mountns_fd;
    return run(s).first;
  };
  EXPECT_EQ(reads(-1), "s3cret\nrc=0\n");  // control: readable without the view
  EXPECT_EQ(reads(view->get()), "rc=1\n");
  EXPECT_EQ(reads(view->get()), "rc=1\n");       // the view serves any number of children
  std::FILE* f = std::fopen(file.c_str(), "r");  // the host's view is untouched
  ASSERT_NE(f, nullptr);
  char buf[16] = {};
  EXPECT_NE(std::fgets(buf, sizeof buf, f), nullptr);
  std::fclose(f);
  EXPECT_STREQ(buf, "s3cret\n");
  ::unlink(file.c_str());
  ::rmdir(dir.c_str());
}

// The netns pin directory's case: a shared mount point with mounts below it
// is gone from the view's mount table, and still whole in ours.
TEST_F(SpawnPrivileged, MountViewDetachesTheSubtreeOnlyForTheChild) {
  char tmpl[] = "/tmp/mtw-detach-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl, pin = dir + "/pin";
  ASSERT_EQ(::mkdir(pin.c_str(), 0755), 0);
  ASSERT_EQ(::mount(dir.c_str(), dir.c_str(), nullptr, MS_BIND, nullptr), 0);
  ASSERT_EQ(::mount(nullptr, dir.c_str(), nullptr, MS_SHARED, nullptr), 0);
  ASSERT_EQ(::mount("mtw-pin", pin.c_str(), "tmpfs", 0, "size=4k"), 0);
  auto pins_seen = [&](int mountns_fd) {
    auto s = worker_spec({"/bin/grep", "-c", " " + pin + " ", "/proc/self/mountinfo"});
    s.mountns_fd = mountns_fd;
    return run(s).first;
  };
  auto view = make_mount_view({}, {dir, "/nonexistent-mtw-dir"});
  ASSERT_TRUE(view) << view.error().to_string();
  EXPECT_EQ(pins_seen(-1), "1\n");  // control
  EXPECT_EQ(pins_seen(view->get()), "0\n");
  std::ifstream in("/proc/self/mountinfo");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find(" " + pin + " "), std::string::npos) << "our pin must survive";
  ::umount2(dir.c_str(), MNT_DETACH);
  ::rmdir(pin.c_str());
  ::rmdir(dir.c_str());
}

// The memory-bound fallback on this (cgroup v1) host: RLIMIT_DATA stops a
// worker's heap growth.
TEST_F(SpawnPrivileged, RlimitDataBoundsAllocation) {
  auto alloc = [](std::uint64_t limit, std::uint64_t bytes) {
    auto s = worker_spec({MTW_ALLOC_HELPER, std::to_string(bytes)});
    s.rlimit_data_bytes = limit;
    return describe_wait_status(run(s).second);
  };
  EXPECT_EQ(alloc(64ull << 20, 256ull << 20), "exited 1");
  EXPECT_EQ(alloc(64ull << 20, 16ull << 20), "exited 0");
  EXPECT_EQ(alloc(0, 256ull << 20), "exited 0");  // control: no bound, same request
}

// A network namespace of our own, made on a throw-away thread (unshare only
// affects the calling thread).
base::UniqueFd make_netns() {
  base::UniqueFd fd;
  std::thread([&] {
    if (::unshare(CLONE_NEWNET) == 0)
      fd.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  }).join();
  return fd;
}

TEST_F(SpawnPrivileged, EntersTheGivenNetns) {
  base::UniqueFd ns = make_netns();
  ASSERT_TRUE(ns);
  struct stat ns_st {};
  ASSERT_EQ(::fstat(ns.get(), &ns_st), 0);
  Pipe in;
  auto s = worker_spec({"/bin/cat"});
  s.netns_fd = ns.get();
  s.fds = {{in.r.get(), 0}};
  auto p = spawn(s);
  ASSERT_TRUE(p) << p.error().to_string();
  const ino_t child_ns = inode_of("/proc/" + std::to_string(p->pid()) + "/ns/net");
  EXPECT_EQ(child_ns, ns_st.st_ino);
  EXPECT_NE(child_ns, inode_of("/proc/self/ns/net"));
  // The netns fd itself is not left open in the child: once the dynamic
  // loader's transient fds are gone, only 0/1/2 remain.
  const std::string fd3 = "/proc/" + std::to_string(p->pid()) + "/fd/3";
  for (int i = 0; i < 200 && fs::exists(fd3); ++i) ::usleep(10'000);
  EXPECT_FALSE(fs::exists(fd3));
}

TEST_F(SpawnPrivileged, BadNetnsFdNamesSetnsStep) {
  base::UniqueFd not_ns(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  auto s = worker_spec({"/bin/true"});
  s.netns_fd = not_ns.get();
  auto p = spawn(s);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, base::Errc::kSyscall);
  EXPECT_EQ(p.error().sys_errno, EINVAL);
  EXPECT_NE(p.error().context.find("setns"), std::string::npos) << p.error().to_string();
}

// cgroup.procs stand-in: a pipe shows what the child writes (and when).
TEST_F(SpawnPrivileged, WritesZeroToCgroupProcsBeforeExec) {
  Pipe procs;
  auto s = worker_spec({"/bin/true"});
  s.cgroup_procs_fd = procs.w.get();
  auto p = spawn(s);
  ASSERT_TRUE(p) << p.error().to_string();
  procs.w.reset();
  EXPECT_EQ(read_all(procs.r.get()), "0");
  ASSERT_TRUE(p->wait(10'000));
}

TEST_F(SpawnPrivileged, CgroupWriteFailureNamesStep) {
  Pipe procs;
  auto s = worker_spec({"/bin/true"});
  s.cgroup_procs_fd = procs.r.get();  // read end: write fails
  auto p = spawn(s);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().sys_errno, EBADF);
  EXPECT_NE(p.error().context.find("cgroup.procs"), std::string::npos) << p.error().to_string();
}

// PR_SET_PDEATHSIG follows the spawning *thread*: the child dies when that
// thread exits, even though the process lives on. Spawned with a uid change,
// which the kernel resets the death signal on unless set afterwards.
TEST_F(SpawnPrivileged, ChildDiesWithSpawningThread) {
  Process p;
  std::thread([&] {
    auto r = spawn(worker_spec({"/bin/sleep", "60"}));
    ASSERT_TRUE(r) << r.error().to_string();
    p = std::move(*r);
  }).join();
  ASSERT_TRUE(p.valid());
  auto st = p.wait(10'000);
  ASSERT_TRUE(st) << st.error().to_string();
  EXPECT_EQ(describe_wait_status(*st), "killed by SIGKILL");
}

TEST_F(SpawnPrivileged, NoDeathSignalWhenDisabled) {
  Process p;
  std::thread([&] {
    auto s = worker_spec({"/bin/sleep", "60"});
    s.parent_death_signal = 0;
    auto r = spawn(s);
    ASSERT_TRUE(r) << r.error().to_string();
    p = std::move(*r);
  }).join();
  auto st = p.wait(300);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, base::Errc::kTimeout);
}

// Through an intermediate process: the supervisor (here: a forked child of
// the test) dies; its worker follows.
TEST_F(SpawnPrivileged, ChildDiesWithParentProcess) {
  Pipe report;
  pid_t mid = ::fork();
  ASSERT_GE(mid, 0);
  if (mid == 0) {
    auto r = spawn(worker_spec({"/bin/sleep", "60"}));
    pid_t pid = r ? r->pid() : -1;
    (void)!::write(report.w.get(), &pid, sizeof pid);
    ::_exit(0);  // no destructors: the worker must die of the death signal
  }
  report.w.reset();
  pid_t worker = -1;
  ASSERT_EQ(::read(report.r.get(), &worker, sizeof worker), static_cast<ssize_t>(sizeof worker));
  ASSERT_GT(worker, 0);
  int status;
  ASSERT_EQ(::waitpid(mid, &status, 0), mid);
  // The worker was reparented (to the sandbox's init or a subreaper) and
  // reaped there; wait for /proc to forget it (or show it as a zombie).
  bool gone = false;
  for (int i = 0; i < 500 && !gone; ++i) {
    auto st = proc_status(worker);
    gone = st.empty() || st["State"].rfind("Z", 0) == 0 || st["Uid"].rfind("200123", 0) != 0;
    if (!gone) ::usleep(10'000);
  }
  EXPECT_TRUE(gone) << "worker " << worker << " outlived its parent";
}

TEST_F(SpawnPrivileged, DestructorLeavesNoZombie) {
  pid_t pid;
  {
    auto p = spawn(worker_spec({"/bin/sleep", "60"}));
    ASSERT_TRUE(p) << p.error().to_string();
    pid = p->pid();
  }
  EXPECT_FALSE(fs::exists("/proc/" + std::to_string(pid)));
}

}  // namespace
}  // namespace mtw::supervisor
