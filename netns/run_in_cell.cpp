#include "netns/run_in_cell.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

extern char** environ;

namespace mtw::netns {

using base::Errc;

namespace {

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// Child side of run_in_netns: async-signal-safe only. Reports the failing
// errno through `report` (CLOEXEC: a successful exec closes it silently).
[[noreturn]] void child_exec(int netns_fd, char* const* argv, char* const* envp,
                             const SpawnOptions& opts, int report) {
  int err = 0;
  if (opts.die_with_parent && ::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) err = errno;
  if (err == 0 && ::setns(netns_fd, CLONE_NEWNET) != 0) err = errno;
  const int fds[3] = {opts.stdin_fd, opts.stdout_fd, opts.stderr_fd};
  for (int i = 0; err == 0 && i < 3; ++i) {
    if (fds[i] >= 0 && fds[i] != i && ::dup2(fds[i], i) < 0) err = errno;
    // dup2 onto itself keeps CLOEXEC; clear it so the program keeps the fd.
    if (fds[i] == i && ::fcntl(i, F_SETFD, 0) < 0) err = errno;
  }
  if (err == 0) {
    ::execve(argv[0], argv, envp);
    err = errno;
  }
  (void)!::write(report, &err, sizeof err);
  ::_exit(127);
}

}  // namespace

Child::Child(Child&& o) noexcept : pid_(std::exchange(o.pid_, -1)), pidfd_(std::move(o.pidfd_)) {}

Child& Child::operator=(Child&& o) noexcept {
  if (this != &o) {
    if (running()) {
      (void)kill(SIGKILL);
      (void)wait();
    }
    pid_ = std::exchange(o.pid_, -1);
    pidfd_ = std::move(o.pidfd_);
  }
  return *this;
}

Child::~Child() {
  if (running()) {
    (void)kill(SIGKILL);
    (void)wait();
  }
}

base::Result<void> Child::kill(int sig) {
  if (!running()) return {};
  if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) != 0 && errno != ESRCH) {
    return base::fail_errno("pidfd_send_signal");
  }
  return {};
}

base::Result<int> Child::wait(int timeout_ms) {
  if (!running()) return base::fail(Errc::kNotFound, "child already reaped");
  pollfd p{pidfd_.get(), POLLIN, 0};
  int n;
  do {
    n = ::poll(&p, 1, timeout_ms);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return base::fail_errno("poll pidfd");
  if (n == 0) return base::fail(Errc::kTimeout, "child still running pid=" + std::to_string(pid_));
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return base::fail_errno("waitpid");
  pid_ = -1;
  pidfd_.reset();
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

base::Result<Child> run_in_netns(int netns_fd, const std::vector<std::string>& argv,
                                 const SpawnOptions& opts) {
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/') {
    return base::fail(Errc::kBadInput, "run_in_netns needs an absolute program path");
  }
  // Everything the child touches is built now: no allocation after fork.
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::vector<char*> cenv;
  for (const auto& e : opts.env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  char* const* envp = opts.env.empty() ? environ : cenv.data();

  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return base::fail_errno("pipe2");
  base::UniqueFd rd(pipefd[0]), wr(pipefd[1]);
  pid_t pid = ::fork();
  if (pid < 0) return base::fail_errno("fork");
  if (pid == 0) child_exec(netns_fd, cargv.data(), envp, opts, wr.get());
  wr.reset();
  Child child;
  child.pid_ = pid;
  // Safe against pid reuse: the child can't be reaped before we wait on it.
  child.pidfd_.reset(pidfd_open(pid));
  if (!child.pidfd_) {
    int err = errno;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    child.pid_ = -1;
    return base::fail_errno("pidfd_open", err);
  }
  int child_err = 0;
  ssize_t n;
  do {
    n = ::read(rd.get(), &child_err, sizeof child_err);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof child_err)) {
    (void)child.wait();
    Errc code = child_err == EPERM    ? Errc::kPermission
                : child_err == ENOENT ? Errc::kNotFound
                                      : Errc::kSyscall;
    return tl::unexpected(base::Error{code, child_err, "run_in_netns " + argv[0]});
  }
  return child;
}

}  // namespace mtw::netns
