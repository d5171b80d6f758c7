// Runs a program inside a cell: fork, setns(CLONE_NEWNET) in the child, exec.
// The parent's threads never change namespace. Between fork and exec the
// child makes only async-signal-safe calls (setns, prctl, dup2, execve,
// write, _exit): everything it needs is built before fork.
// Thread-safety: run_in_netns may be called from any thread; a Child is
// used by one thread at a time.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"

namespace mtw::netns {

// A spawned process, held through a pidfd so kill/wait can't hit a recycled
// pid. The destructor SIGKILLs and reaps a child still running. Move-only.
class Child {
 public:
  Child() = default;
  Child(Child&& o) noexcept;
  Child& operator=(Child&& o) noexcept;
  Child(const Child&) = delete;
  ~Child();

  // Waits up to `timeout_ms` (-1 = forever). Returns the exit code, or
  // 128 + signal number when killed; kTimeout when still running.
  [[nodiscard]] base::Result<int> wait(int timeout_ms = -1);
  // Sends `sig`; a reaped child is success.
  [[nodiscard]] base::Result<void> kill(int sig);

  pid_t pid() const noexcept { return pid_; }
  bool running() const noexcept { return pid_ > 0; }

 private:
  friend base::Result<Child> run_in_netns(int, const std::vector<std::string>&,
                                          const struct SpawnOptions&);
  pid_t pid_ = -1;
  base::UniqueFd pidfd_;
};

struct SpawnOptions {
  // Dup'ed onto 0/1/2 in the child when >= 0; otherwise inherited.
  int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;
  // Full environment for the child ("K=V"); empty = inherit ours.
  std::vector<std::string> env;
  // SIGKILL the child when the spawning thread exits (PR_SET_PDEATHSIG).
  bool die_with_parent = true;
};

// Starts argv[0] (an absolute path: execve does no PATH search) with
// arguments argv inside the namespace `netns_fd`. Returns once the child has
// exec'ed; a failure before exec (setns, exec) comes back as an Error with
// the child's errno: kPermission for EPERM, kNotFound for ENOENT.
[[nodiscard]] base::Result<Child> run_in_netns(int netns_fd, const std::vector<std::string>& argv,
                                               const SpawnOptions& opts = {});

}  // namespace mtw::netns
