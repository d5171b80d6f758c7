// Spawning the supervisor's children (the gate and the per-user workers)
// with Boost.Process, confined before exec: optional setns into the user's
// cell, dropped supplementary groups, setresgid/setresuid to an unprivileged
// id (no passwd entry needed), every capability dropped (bounding,
// inheritable, ambient), an optional mount namespace, no_new_privs, a parent-death signal,
// RLIMIT_NOFILE, RLIMIT_NPROC, a memory bound (see memory_bound.h) and an exact fd layout (every
// other descriptor closed). Between fork and exec the child makes only async-signal-safe system
// calls; all it needs is prepared before the fork. Thread-safety: spawn() may be called from any
// thread; a Process is used by one thread at a time.
#pragma once

#include <sys/types.h>

#include <csignal>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"

namespace mtw::supervisor {

struct SpawnSpec {
  std::vector<std::string> argv;  // argv[0]: absolute path (no PATH search)
  std::vector<std::string> env;   // complete environment, "K=V"; empty = none at all
  int netns_fd = -1;              // >= 0: setns(CLONE_NEWNET) before dropping privileges
  // >= 0: setns(CLONE_NEWNS) into this mount namespace (the workers'
  // shared view, see mount_view.h) before dropping privileges.
  int mountns_fd = -1;
  std::optional<uid_t> uid;       // set: setgroups(0), setresgid(gid), setresuid(uid)
  std::optional<gid_t> gid;       // defaults to uid's value when unset and uid is set
  bool drop_capabilities = true;  // clear the bounding set, inheritable and ambient caps
  bool no_new_privs = true;
  // setsid(): the child leaves our session and process group, so a
  // terminal's Ctrl+C reaches only the supervisor, which then stops its
  // children in order (and a child can never read our terminal).
  bool new_session = true;
  int parent_death_signal = SIGKILL;  // 0 = none
  std::uint64_t nofile = 0;           // > 0: RLIMIT_NOFILE soft = hard = this
  // > 0: RLIMIT_DATA soft = hard = this (the fallback memory bound, see
  // memory_bound.h). Data segment, heap and private writable mappings count.
  std::uint64_t rlimit_data_bytes = 0;
  // > 0: RLIMIT_NPROC soft = hard = this. Counts every process and thread
  // of the child's real uid (its own, under the supervisor): no fork bomb.
  std::uint64_t nproc = 0;
  // >= 0: an open fd of a cgroup v2 "cgroup.procs" file; the child writes
  // its own pid there before exec, so it never runs outside the cgroup.
  int cgroup_procs_fd = -1;
  // (fd in this process, fd number in the child). Every other fd of the
  // child is closed; 0/1/2 map to /dev/null unless listed here.
  std::vector<std::pair<int, int>> fds;
};

// A running (or exited, not yet reaped) child held through a pidfd, so
// signals never reach a recycled pid. The destructor SIGKILLs and reaps a
// child still running. Move-only.
class Process {
 public:
  Process() = default;
  Process(Process&&) noexcept;
  Process& operator=(Process&&) noexcept;
  Process(const Process&) = delete;
  ~Process();

  pid_t pid() const noexcept { return pid_; }
  // Becomes readable when the child exits (for asio async_wait).
  int pidfd() const noexcept { return pidfd_.get(); }
  bool valid() const noexcept { return pid_ > 0; }

  // Sends `sig`; success when the child is already gone.
  [[nodiscard]] base::Result<void> kill(int sig);
  // Non-blocking: the wait status (as from waitpid) once exited, nullopt
  // while running. Reaps the child; afterwards valid() is false.
  [[nodiscard]] base::Result<std::optional<int>> try_reap();
  // Blocks up to `timeout_ms` (-1 = forever); kTimeout while still running.
  [[nodiscard]] base::Result<int> wait(int timeout_ms);

 private:
  friend base::Result<Process> spawn(const SpawnSpec& spec);
  pid_t pid_ = -1;
  base::UniqueFd pidfd_;
};

// Starts the child. Returns once it has exec'ed; a failure in the child
// before exec (setns, setuid, exec, ...) comes back as an Error naming the
// step, with the child's errno (kNotFound for ENOENT, kPermission for
// EPERM/EACCES).
[[nodiscard]] base::Result<Process> spawn(const SpawnSpec& spec);

// "exited 3", "killed by SIGKILL", ... for a waitpid status.
std::string describe_wait_status(int status);

}  // namespace mtw::supervisor
