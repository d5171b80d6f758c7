// Bounding a worker's memory. Preferred: cgroup v2 memory.max on a child
// cgroup per worker under a delegated parent (systemd Delegate=yes gives the
// service its own subtree). Where the host has no usable cgroup v2 memory
// controller (cgroup v1 or hybrid hosts, a parent without "memory" in
// cgroup.subtree_control, no write access), the documented fallback is
// RLIMIT_DATA on the worker (docs/cells.md): it bounds heap and private
// anonymous mappings, which is where a worker's memory goes (buffers,
// sessions), though not page cache or socket buffers.
// This module never creates or changes cgroups unless detect() reported
// cgroup v2 as usable for the configured parent.
// Not thread-safe: use from the supervisor's thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"
#include "base/unique_fd.h"

namespace mtw::supervisor {

enum class MemoryBoundMode { kNone, kCgroupV2, kRlimit };
std::string_view memory_bound_mode_name(
    MemoryBoundMode m) noexcept;  // "none" | "cgroup2" | "rlimit"

struct MemoryBoundPlan {
  MemoryBoundMode mode = MemoryBoundMode::kNone;
  std::string cgroup_parent;  // kCgroupV2: absolute directory under /sys/fs/cgroup
  std::string reason;         // why this mode (logged once at start)
};

// Decides how to bound `limit_bytes` (0 = no bound -> kNone).
// `cgroup_dir`: configured parent ("" = the supervisor's own cgroup from
// /proc/self/cgroup, which must be a v2 "0::" entry). `cgroup_root` is
// where cgroup2 is mounted (tests pass a directory of their own).
// Usable v2 means: `cgroup_root` is a cgroup2 mount (statfs magic), the
// parent exists, lists "memory" in cgroup.subtree_control (or can enable
// it: it is in cgroup.controllers and we may write subtree_control) and is
// writable. Anything else: kRlimit with the reason.
MemoryBoundPlan plan_memory_bound(std::uint64_t limit_bytes, const std::string& cgroup_dir,
                                  const std::string& cgroup_root = "/sys/fs/cgroup");

// Building blocks of plan_memory_bound, exposed for tests.
// The path of the "0::<path>" (cgroup v2) line of /proc/<pid>/cgroup text.
std::optional<std::string> cgroup2_path_from_proc(std::string_view proc_cgroup);
// Whether a space-separated list (cgroup.controllers, cgroup.subtree_control) names `name`.
bool controller_listed(std::string_view list, std::string_view name);

// cgroup v2 lets a cgroup hand controllers to its children only while no
// process lives in it ("no internal processes"). Under systemd with
// Delegate=yes the supervisor sits in the delegated cgroup itself, so before
// the first worker cgroup it moves itself (all threads) into the leaf
// "<parent>/<leaf>" (created if missing). No-op when `parent` holds no
// process (the supervisor already lives elsewhere). kSyscall with errno on
// failure; the caller then falls back to RLIMIT_DATA.
[[nodiscard]] base::Result<void> enter_leaf_cgroup(const std::string& parent,
                                                   const std::string& leaf);

// A per-worker cgroup v2 directory "<parent>/<name>" with memory.max set;
// removed (rmdir) by the destructor once empty: destroy it after the worker
// in it has been reaped (a cgroup with live members is EBUSY). Move-only.
class WorkerCgroup {
 public:
  WorkerCgroup() = default;
  WorkerCgroup(WorkerCgroup&&) noexcept;
  WorkerCgroup& operator=(WorkerCgroup&&) noexcept;
  ~WorkerCgroup();
  // Only valid for a plan with mode kCgroupV2 (else kBadInput). Enables
  // "+memory" in the parent's cgroup.subtree_control when it is not listed
  // yet, makes "<parent>/<name>" (kExists if present), writes memory.max
  // (and memory.swap.max = 0 where that file exists), opens cgroup.procs.
  // `name`: one path component. On failure nothing is left behind.
  [[nodiscard]] static base::Result<WorkerCgroup> create(const MemoryBoundPlan& plan,
                                                         const std::string& name,
                                                         std::uint64_t limit_bytes);
  // Opened "cgroup.procs" for SpawnSpec::cgroup_procs_fd.
  int procs_fd() const noexcept { return procs_.get(); }
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
  base::UniqueFd procs_;
};

}  // namespace mtw::supervisor
