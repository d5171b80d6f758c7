// Process: the owner of a spawned child (pidfd, kill, reap, wait), and
// wait statuses in words. Kept apart from spawn.cpp, which compiles
// Boost.Process.
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "supervisor/spawn.h"

namespace mtw::supervisor {

using base::Errc;

Process::Process(Process&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)), pidfd_(std::move(o.pidfd_)) {}

Process& Process::operator=(Process&& o) noexcept {
  if (this != &o) {
    Process old(std::move(*this));  // kills and reaps what we held
    pid_ = std::exchange(o.pid_, -1);
    pidfd_ = std::move(o.pidfd_);
  }
  return *this;
}

Process::~Process() {
  if (!valid()) return;
  (void)kill(SIGKILL);
  int status;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
}

base::Result<void> Process::kill(int sig) {
  if (!valid()) return {};
  if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) == 0 || errno == ESRCH) {
    return {};
  }
  return base::fail_errno("pidfd_send_signal pid=" + std::to_string(pid_));
}

base::Result<std::optional<int>> Process::try_reap() {
  if (!valid()) return base::fail(Errc::kNotFound, "try_reap: no child");
  int status = 0;
  pid_t r;
  do r = ::waitpid(pid_, &status, WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r < 0) return base::fail_errno("waitpid pid=" + std::to_string(pid_));
  if (r == 0) return std::optional<int>();
  pid_ = -1;
  pidfd_.reset();
  return std::optional<int>(status);
}

base::Result<int> Process::wait(int timeout_ms) {
  if (!valid()) return base::fail(Errc::kNotFound, "wait: no child");
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int left = -1;
    if (timeout_ms >= 0) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      left = static_cast<int>(std::max<std::int64_t>(0, ms.count()));
    }
    pollfd pfd{pidfd_.get(), POLLIN, 0};
    int n = ::poll(&pfd, 1, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return base::fail_errno("poll pidfd pid=" + std::to_string(pid_));
    if (n == 0) return base::fail(Errc::kTimeout, "pid " + std::to_string(pid_) + " still running");
    auto r = try_reap();
    if (!r) return tl::unexpected(r.error());
    if (*r) return **r;
  }
}

std::string describe_wait_status(int status) {
  auto sig_name = [](int sig) {
    const char* abbrev = ::sigabbrev_np(sig);
    return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
  };
  if (WIFEXITED(status)) return "exited " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    std::string s = "killed by " + sig_name(WTERMSIG(status));
    if (WCOREDUMP(status)) s += " (core dumped)";
    return s;
  }
  if (WIFSTOPPED(status)) return "stopped by " + sig_name(WSTOPSIG(status));
  if (WIFCONTINUED(status)) return "continued";
  return "unknown wait status " + std::to_string(status);
}

}  // namespace mtw::supervisor
