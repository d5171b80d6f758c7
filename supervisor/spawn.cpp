// vfork/exec with Boost.Process v1 (product spec), confinement done by an
// extend handler between fork and exec. Boost.Process stays in this file:
// it is slow to compile.
//
// vfork, not fork: fork write-protects every page of the supervisor's heap
// (tens of MiB with 10,000 users), and the next pass over the users then
// takes one page fault per page: ~3,000 faults, 115-160 ms on a PVM guest,
// stalling the event loop after every worker start. vfork copies no page
// table; the parent thread waits until the exec, as it already did on the
// report pipe. The child shares our memory until then: it writes only
// ChildPlan fields nobody reads after the spawn (and the spawning thread's
// errno), execs itself instead of returning into Boost, and resets every
// signal handler (its table is its own) before it unblocks signals.
//
// Child side: only async-signal-safe system calls (raw syscalls for the id
// changes, so glibc's multi-thread setxid broadcast never runs), no
// allocation, no locks. Everything it needs (argv, envp, fd tables, the cap
// count) is prepared in the parent before the fork. A failing step writes
// {step, errno} to a CLOEXEC pipe and _exits; the parent reads that pipe to
// EOF: EOF without data means the exec succeeded.
#include "supervisor/spawn.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

// Boost.Process defines its vfork executor only for pre-2008 POSIX feature
// macros (vfork left POSIX.1-2008); glibc has it either way.
#ifndef BOOST_POSIX_HAS_VFORK
#define BOOST_POSIX_HAS_VFORK 1
#endif
#include <boost/process/args.hpp>
#include <boost/process/child.hpp>
#include <boost/process/exe.hpp>
#include <boost/process/extend.hpp>
#include <boost/process/posix.hpp>

namespace mtw::supervisor {

namespace bp = boost::process;
using base::Errc;

namespace {

// Steps of the child, in execution order; the parent names the failing one.
enum class Step : int {
  kSignals = 1,
  kMoveFds,
  kPlaceFds,
  kDevNull,
  kCloseFds,
  kCgroup,
  kSetns,
  kSetnsMount,
  kRlimitNofile,
  kRlimitData,
  kRlimitNproc,
  kCapBoundingSet,
  kAmbientCaps,
  kSetgroups,
  kSetresgid,
  kSetresuid,
  kCapset,
  kParentDeathSignal,
  kNoNewPrivs,
  kExec,
  kSetsid,
};

const char* step_name(Step s) {
  switch (s) {
    case Step::kSignals:
      return "reset signals";
    case Step::kMoveFds:
      return "move fds above targets";
    case Step::kPlaceFds:
      return "dup2 fd layout";
    case Step::kDevNull:
      return "dup2 /dev/null to stdio";
    case Step::kCloseFds:
      return "close other fds";
    case Step::kCgroup:
      return "write cgroup.procs";
    case Step::kSetns:
      return "setns(CLONE_NEWNET)";
    case Step::kSetnsMount:
      return "setns(CLONE_NEWNS)";
    case Step::kRlimitNofile:
      return "setrlimit(RLIMIT_NOFILE)";
    case Step::kRlimitData:
      return "setrlimit(RLIMIT_DATA)";
    case Step::kRlimitNproc:
      return "setrlimit(RLIMIT_NPROC)";
    case Step::kCapBoundingSet:
      return "prctl(PR_CAPBSET_DROP)";
    case Step::kAmbientCaps:
      return "prctl(PR_CAP_AMBIENT_CLEAR_ALL)";
    case Step::kSetgroups:
      return "setgroups(0)";
    case Step::kSetresgid:
      return "setresgid";
    case Step::kSetresuid:
      return "setresuid";
    case Step::kCapset:
      return "capset(0)";
    case Step::kParentDeathSignal:
      return "prctl(PR_SET_PDEATHSIG)";
    case Step::kNoNewPrivs:
      return "prctl(PR_SET_NO_NEW_PRIVS)";
    case Step::kExec:
      return "execve";
    case Step::kSetsid:
      return "setsid";
  }
  return "unknown step";
}

struct ChildReport {
  int step;
  int err;
};

// Everything the child reads, prepared before the fork. The vectors are
// sized in the parent; the child only writes into existing elements.
struct ChildPlan {
  std::vector<int> sources, targets, temps;  // spec.fds, and where sources were moved
  int err_fd = -1;                           // write end of the report pipe (CLOEXEC)
  int devnull_fd = -1;
  int netns_fd = -1;
  int cgroup_fd = -1;
  int mountns_fd = -1;
  int high_base = 0;  // every temp is >= this; above all targets and slots
  int slot = 0;       // err/netns/cgroup/mountns go to slot .. slot+3 (CLOEXEC)
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  bool drop_caps = true;
  bool new_session = true;
  bool no_new_privs = true;
  int pdeath_signal = 0;
  pid_t parent_pid = 0;
  int cap_last = 0;
  std::uint64_t nofile = 0;
  std::uint64_t data_bytes = 0;
  std::uint64_t nproc = 0;
  const char* exe = nullptr;
  char** argv = nullptr;
  char** envp = nullptr;
};

[[noreturn]] void child_fail(int fd, Step s, int err) {
  ChildReport r{static_cast<int>(s), err};
  ssize_t n;
  do n = ::write(fd, &r, sizeof r);
  while (n < 0 && errno == EINTR);
  ::_exit(127);
}

bool is_target(const ChildPlan& p, int fd) {
  for (int t : p.targets)
    if (t == fd) return true;
  return false;
}

int close_from(unsigned first) {
  if (::syscall(SYS_close_range, first, ~0U, 0) == 0) return 0;
  if (errno != ENOSYS) return -1;
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
  for (rlim_t fd = first; fd < rl.rlim_cur && fd < (1u << 20); ++fd) ::close(static_cast<int>(fd));
  return 0;
}

// Handlers set by the parent would run in the child until exec; ignored
// signals and the blocked mask would survive exec (a worker with SIGPIPE
// ignored or SIGTERM blocked). Reset both. spawn() blocks all signals across
// the fork, so nothing arrives before this.
void child_reset_signals(int err_fd) {
  struct sigaction sa {};
  sa.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::sigaction(sig, &sa, nullptr);  // EINVAL for glibc's reserved RT signals: fine
  }
  sigset_t none;
  sigemptyset(&none);
  if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) child_fail(err_fd, Step::kSignals, errno);
}

void child_fd_layout(ChildPlan& p) {
  const int report = p.err_fd;
  // 1. Move every fd we still need above all target numbers, so no dup2
  //    below overwrites a source that is also some other entry's target.
  auto up = [&](int fd) {
    if (fd < 0) return -1;
    int t = ::fcntl(fd, F_DUPFD_CLOEXEC, p.high_base);
    if (t < 0) child_fail(report, Step::kMoveFds, errno);
    return t;
  };
  const int err = up(p.err_fd);
  for (std::size_t i = 0; i < p.sources.size(); ++i) p.temps[i] = up(p.sources[i]);
  const int devnull = up(p.devnull_fd);
  const int netns = up(p.netns_fd);
  const int cgroup = up(p.cgroup_fd);
  const int mountns = up(p.mountns_fd);
  // 2. Place: dup2 clears CLOEXEC on the target, so these survive exec.
  for (std::size_t i = 0; i < p.targets.size(); ++i) {
    if (::dup2(p.temps[i], p.targets[i]) < 0) child_fail(err, Step::kPlaceFds, errno);
  }
  for (int std_fd = 0; std_fd < 3; ++std_fd) {
    if (!is_target(p, std_fd) && ::dup2(devnull, std_fd) < 0) {
      child_fail(err, Step::kDevNull, errno);
    }
  }
  // 3. Our own fds go right above the targets, CLOEXEC (exec closes them).
  auto place = [&](int fd, int at) {
    if (fd < 0) return -1;
    if (::dup3(fd, at, O_CLOEXEC) < 0) child_fail(err, Step::kPlaceFds, errno);
    return at;
  };
  p.err_fd = place(err, p.slot);
  p.netns_fd = place(netns, p.slot + 1);
  p.cgroup_fd = place(cgroup, p.slot + 2);
  p.mountns_fd = place(mountns, p.slot + 3);
  // 4. Close everything else: the gaps between targets, then all above.
  for (int fd = 3; fd < p.slot; ++fd) {
    if (!is_target(p, fd)) ::close(fd);
  }
  if (p.netns_fd < 0) ::close(p.slot + 1);  // unused slots may hold inherited fds
  if (p.cgroup_fd < 0) ::close(p.slot + 2);
  if (p.mountns_fd < 0) ::close(p.slot + 3);
  if (close_from(static_cast<unsigned>(p.slot + 4)) != 0) {
    child_fail(p.err_fd, Step::kCloseFds, errno);
  }
}

// Into the cell: cgroup, network namespace, resource limits (while still
// privileged enough to set them).
void child_enter_cell(const ChildPlan& p) {
  const int err = p.err_fd;
  if (p.cgroup_fd >= 0) {
    // "0" = the writing process: the child joins before it runs anything.
    if (::write(p.cgroup_fd, "0", 1) != 1) child_fail(err, Step::kCgroup, errno);
    ::close(p.cgroup_fd);
  }
  if (p.netns_fd >= 0) {
    if (::setns(p.netns_fd, CLONE_NEWNET) != 0) child_fail(err, Step::kSetns, errno);
    ::close(p.netns_fd);
  }
  if (p.mountns_fd >= 0) {
    // Needs CAP_SYS_ADMIN and CAP_SYS_CHROOT (still held); sets our root
    // and cwd to that namespace's, so exec resolves the binary there.
    if (::setns(p.mountns_fd, CLONE_NEWNS) != 0) child_fail(err, Step::kSetnsMount, errno);
    ::close(p.mountns_fd);
  }
  if (p.nofile > 0) {
    rlimit rl{p.nofile, p.nofile};
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) child_fail(err, Step::kRlimitNofile, errno);
  }
  if (p.data_bytes > 0) {
    rlimit rl{p.data_bytes, p.data_bytes};
    if (::setrlimit(RLIMIT_DATA, &rl) != 0) child_fail(err, Step::kRlimitData, errno);
  }
  if (p.nproc > 0) {
    // Checked when the uid changes and at every clone: before setresuid the
    // new uid owns no process, so the id change itself passes.
    rlimit rl{p.nproc, p.nproc};
    if (::setrlimit(RLIMIT_NPROC, &rl) != 0) child_fail(err, Step::kRlimitNproc, errno);
  }
}

// Capabilities and ids: bounding and ambient sets, supplementary groups,
// gid, uid, then the remaining capability sets.
void child_drop_privileges(const ChildPlan& p) {
  const int err = p.err_fd;
  if (p.drop_caps) {
    for (int cap = 0; cap <= p.cap_last; ++cap) {
      if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) <= 0) continue;  // absent, or unknown cap
      if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
        child_fail(err, Step::kCapBoundingSet, errno);
      }
    }
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
      child_fail(err, Step::kAmbientCaps, errno);
    }
  }
  if (p.uid || p.gid) {
    if (::syscall(SYS_setgroups, 0, nullptr) != 0) child_fail(err, Step::kSetgroups, errno);
  }
  if (p.gid) {
    if (::syscall(SYS_setresgid, *p.gid, *p.gid, *p.gid) != 0) {
      child_fail(err, Step::kSetresgid, errno);
    }
  }
  if (p.uid) {
    if (::syscall(SYS_setresuid, *p.uid, *p.uid, *p.uid) != 0) {
      child_fail(err, Step::kSetresuid, errno);
    }
  }
  if (p.drop_caps) {
    // Leaving uid 0 already cleared permitted/effective/ambient; this also
    // clears the inheritable set (and everything when no uid change).
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (::syscall(SYS_capset, &hdr, data) != 0) child_fail(err, Step::kCapset, errno);
  }
}

void child_confine(const ChildPlan& p) {
  const int err = p.err_fd;
  child_enter_cell(p);
  child_drop_privileges(p);
  // After the id change on purpose: the kernel clears the parent-death
  // signal whenever the euid/egid changes (commit_creds), so setting it
  // earlier would be silently undone.
  if (p.pdeath_signal != 0) {
    if (::prctl(PR_SET_PDEATHSIG, p.pdeath_signal, 0, 0, 0) != 0) {
      child_fail(err, Step::kParentDeathSignal, errno);
    }
    // The parent may have died before the prctl: then nobody reads the
    // report and the signal will never come.
    if (::getppid() != p.parent_pid) ::_exit(127);
  }
  if (p.no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    child_fail(err, Step::kNoNewPrivs, errno);
  }
}

// The Boost.Process extension: overrides argv/envp with our exact arrays
// (after Boost's own exe/args initializer, which runs first), confines the
// child before exec, and reports an exec failure through our pipe.
struct Confine : bp::extend::handler {
  ChildPlan* plan;
  explicit Confine(ChildPlan* p) : plan(p) {}

  template <class Executor>
  void on_setup(Executor& e) const {
    e.exe = plan->exe;
    e.cmd_line = plan->argv;
    e.env = plan->envp;
    e.cmd_style = false;
  }
  template <class Executor>
  void on_exec_setup(Executor&) const {
    child_reset_signals(plan->err_fd);
    if (plan->new_session && ::setsid() < 0) child_fail(plan->err_fd, Step::kSetsid, errno);
    child_fd_layout(*plan);
    child_confine(*plan);
    // Exec here rather than return to Boost: after a failed execve Boost's
    // vfork path stores the error in its executor, which the parent shares,
    // and spawn() would then report "fork" instead of our step.
    ::execve(plan->exe, plan->argv, plan->envp);
    child_fail(plan->err_fd, Step::kExec, errno);
  }
  template <class Executor>
  void on_exec_error(Executor&, const std::error_code& ec) const {
    child_fail(plan->err_fd, Step::kExec, ec.value());  // unreached: on_exec_setup execs itself
  }
};

int read_cap_last_cap() {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  int n = -1;
  if (in >> n && n >= 0 && n < 64) return n;
  return CAP_LAST_CAP;
}

base::Error child_error(const std::string& exe, const ChildReport& r) {
  Errc code = Errc::kSyscall;
  if (r.err == ENOENT) code = Errc::kNotFound;
  if (r.err == EPERM || r.err == EACCES) code = Errc::kPermission;
  return base::Error{code, r.err,
                     "spawn " + exe + ": " + step_name(static_cast<Step>(r.step)) + " failed"};
}

// Blocks every signal for its lifetime (this thread only).
class BlockSignals {
 public:
  BlockSignals() {
    sigset_t all;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old_);
  }
  ~BlockSignals() { ::pthread_sigmask(SIG_SETMASK, &old_, nullptr); }

 private:
  sigset_t old_;
};

base::Result<void> check_spec(const SpawnSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty() || spec.argv[0][0] != '/') {
    return base::fail(Errc::kBadInput, "spawn: argv[0] must be an absolute path");
  }
  for (auto [src, dst] : spec.fds) {
    if (dst < 0 || dst > (1 << 20)) {
      return base::fail(Errc::kBadInput, "spawn: bad target fd " + std::to_string(dst));
    }
    if (::fcntl(src, F_GETFD) < 0) {
      return base::fail_errno("spawn: source fd " + std::to_string(src) + " not open");
    }
  }
  return {};
}

// Only for our own unreaped child (its pid cannot have been recycled).
void kill_and_reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

// Everything the child needs except argv/envp; fd numbers chosen so that
// temporaries (>= high_base) never collide with targets or our slots.
ChildPlan make_plan(const SpawnSpec& spec, int report_fd, int devnull_fd) {
  ChildPlan p;
  int max_fd =
      std::max({2, report_fd, devnull_fd, spec.netns_fd, spec.cgroup_procs_fd, spec.mountns_fd});
  int max_target = 2;
  for (auto [src, dst] : spec.fds) {
    p.sources.push_back(src);
    p.targets.push_back(dst);
    max_fd = std::max(max_fd, src);
    max_target = std::max(max_target, dst);
  }
  p.temps.assign(p.sources.size(), -1);
  p.slot = max_target + 1;
  p.high_base = std::max(max_fd, p.slot + 3) + 1;
  p.err_fd = report_fd;
  p.devnull_fd = devnull_fd;
  p.netns_fd = spec.netns_fd;
  p.cgroup_fd = spec.cgroup_procs_fd;
  p.mountns_fd = spec.mountns_fd;
  p.uid = spec.uid;
  p.gid = spec.gid ? spec.gid : (spec.uid ? std::optional<gid_t>(*spec.uid) : std::nullopt);
  p.drop_caps = spec.drop_capabilities;
  p.new_session = spec.new_session;
  p.no_new_privs = spec.no_new_privs;
  p.pdeath_signal = spec.parent_death_signal;
  p.parent_pid = ::getpid();
  p.cap_last = read_cap_last_cap();
  p.nofile = spec.nofile;
  p.data_bytes = spec.rlimit_data_bytes;
  p.nproc = spec.nproc;
  return p;
}

// Reads the child's report pipe to EOF: nothing means the exec succeeded; a
// {step, errno} report (or a failed read) means it did not, and the child
// is reaped.
base::Result<void> await_exec(pid_t pid, int report_fd, const std::string& exe) {
  ChildReport rep{};
  ssize_t n;
  do n = ::read(report_fd, &rep, sizeof rep);
  while (n < 0 && errno == EINTR);
  if (n == 0) return {};
  const int read_err = errno;
  kill_and_reap(pid);
  if (n == static_cast<ssize_t>(sizeof rep)) return tl::unexpected(child_error(exe, rep));
  if (n < 0) return base::fail_errno("spawn " + exe + ": read report", read_err);
  return base::fail(Errc::kInternal, "spawn " + exe + ": short report from child");
}

}  // namespace

base::Result<Process> spawn(const SpawnSpec& spec) {
  if (auto r = check_spec(spec); !r) return tl::unexpected(r.error());

  // Everything the child touches, allocated now.
  std::vector<std::string> argv_s = spec.argv, env_s = spec.env;
  std::vector<char*> argv, envp;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return base::fail_errno("spawn: pipe2");
  base::UniqueFd report_r(pipefd[0]), report_w(pipefd[1]);
  base::UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull) return base::fail_errno("spawn: open /dev/null");

  ChildPlan p = make_plan(spec, report_w.get(), devnull.get());
  p.exe = argv_s[0].c_str();
  p.argv = argv.data();
  p.envp = envp.data();

  std::error_code ec;
  bp::child c;
  {
    BlockSignals blocked;
    try {
      std::vector<std::string> args(argv_s.begin() + 1, argv_s.end());
      c = bp::child(bp::exe = argv_s[0], bp::args = args, Confine(&p), bp::posix::use_vfork, ec);
    } catch (const std::exception& e) {
      return base::fail(Errc::kInternal, std::string("spawn: boost.process: ") + e.what());
    }
  }
  if (ec || !c.valid()) {
    return tl::unexpected(base::Error{Errc::kSyscall, ec.value(), "spawn " + argv_s[0] + ": fork"});
  }
  const pid_t pid = c.id();
  c.detach();  // Process owns it from here: no terminate() in ~child
  report_w.reset();
  if (auto r = await_exec(pid, report_r.get(), argv_s[0]); !r) return tl::unexpected(r.error());
  Process proc;
  proc.pid_ = pid;
  proc.pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!proc.pidfd_) {
    const int err = errno;
    proc.pid_ = -1;
    kill_and_reap(pid);  // still our unreaped child: the pid cannot be recycled yet
    return base::fail_errno("spawn: pidfd_open", err);
  }
  return proc;
}

}  // namespace mtw::supervisor
