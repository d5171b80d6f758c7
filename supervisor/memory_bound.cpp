#include "supervisor/memory_bound.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

namespace mtw::supervisor {

namespace {

using base::Errc;

std::optional<std::string> read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string errno_text(int err) { return std::string(std::strerror(err)); }

MemoryBoundPlan rlimit(std::string reason) {
  return MemoryBoundPlan{MemoryBoundMode::kRlimit, {}, std::move(reason) + "; using RLIMIT_DATA"};
}

// Writes all of `text` to `path` (O_TRUNC like a shell redirection; cgroupfs
// accepts it). `create`: also make a plain file (only ever matters outside
// cgroupfs, where the interface files already exist).
base::Result<void> write_file(const std::string& path, std::string_view text, bool create) {
  int flags = O_WRONLY | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0);
  base::UniqueFd fd(::open(path.c_str(), flags, 0644));
  if (!fd) return base::fail_errno("open " + path);
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return base::fail_errno("write " + path);
  }
  return {};
}

bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool valid_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

}  // namespace

std::string_view memory_bound_mode_name(MemoryBoundMode m) noexcept {
  switch (m) {
    case MemoryBoundMode::kNone:
      return "none";
    case MemoryBoundMode::kCgroupV2:
      return "cgroup2";
    case MemoryBoundMode::kRlimit:
      return "rlimit";
  }
  return "unknown";
}

std::optional<std::string> cgroup2_path_from_proc(std::string_view text) {
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (line.substr(0, 3) == "0::" && line.size() > 3 && line[3] == '/') {
      return std::string(line.substr(3));
    }
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return std::nullopt;
}

bool controller_listed(std::string_view list, std::string_view name) {
  std::size_t i = 0;
  while (i < list.size()) {
    while (i < list.size() && std::isspace(static_cast<unsigned char>(list[i]))) ++i;
    std::size_t j = i;
    while (j < list.size() && !std::isspace(static_cast<unsigned char>(list[j]))) ++j;
    if (j > i && list.substr(i, j - i) == name) return true;
    i = j;
  }
  return false;
}

MemoryBoundPlan plan_memory_bound(std::uint64_t limit_bytes, const std::string& cgroup_dir,
                                  const std::string& cgroup_root) {
  if (limit_bytes == 0) return {MemoryBoundMode::kNone, {}, "no memory limit configured"};

  struct statfs sf {};
  if (::statfs(cgroup_root.c_str(), &sf) != 0) {
    return rlimit("statfs " + cgroup_root + ": " + errno_text(errno));
  }
  if (static_cast<unsigned long>(sf.f_type) != CGROUP2_SUPER_MAGIC) {
    char hex[32];
    std::snprintf(hex, sizeof hex, "0x%lx", static_cast<unsigned long>(sf.f_type));
    return rlimit(cgroup_root + " is not a cgroup2 mount (f_type " + hex +
                  "; cgroup v1 or hybrid host)");
  }

  std::string parent;
  if (cgroup_dir.empty()) {
    auto proc = read_text("/proc/self/cgroup");
    auto own = proc ? cgroup2_path_from_proc(*proc) : std::nullopt;
    if (!own) return rlimit("no cgroup v2 \"0::\" entry in /proc/self/cgroup");
    parent = cgroup_root + (*own == "/" ? std::string() : *own);
  } else if (cgroup_dir.front() == '/') {
    const std::string prefix = cgroup_root.back() == '/' ? cgroup_root : cgroup_root + "/";
    if (cgroup_dir != cgroup_root && cgroup_dir.rfind(prefix, 0) != 0) {
      return rlimit("cgroup parent " + cgroup_dir + " is not under " + cgroup_root);
    }
    parent = cgroup_dir;
  } else {
    parent = cgroup_root + "/" + cgroup_dir;
  }
  while (parent.size() > 1 && parent.back() == '/') parent.pop_back();

  if (!is_dir(parent)) return rlimit("cgroup parent " + parent + " does not exist");
  auto subtree = read_text(parent + "/cgroup.subtree_control");
  auto controllers = read_text(parent + "/cgroup.controllers");
  if (!subtree || !controllers) {
    return rlimit("cgroup parent " + parent + " has no cgroup.subtree_control/cgroup.controllers");
  }
  const bool enabled = controller_listed(*subtree, "memory");
  if (!enabled && !controller_listed(*controllers, "memory")) {
    return rlimit("memory controller not available in " + parent +
                  "/cgroup.controllers (bound to cgroup v1, or not delegated)");
  }
  if (::faccessat(AT_FDCWD, parent.c_str(), W_OK, AT_EACCESS) != 0) {
    return rlimit("cgroup parent " + parent + " is not writable: " + errno_text(errno));
  }
  if (enabled) {
    return {MemoryBoundMode::kCgroupV2, parent,
            "cgroup v2 memory controller delegated at " + parent};
  }
  const std::string subtree_file = parent + "/cgroup.subtree_control";
  if (::faccessat(AT_FDCWD, subtree_file.c_str(), W_OK, AT_EACCESS) != 0) {
    return rlimit("memory controller not enabled in " + subtree_file +
                  " and the file is not writable: " + errno_text(errno));
  }
  return {MemoryBoundMode::kCgroupV2, parent,
          "cgroup v2 memory controller available at " + parent + " (enabling it for children)"};
}

base::Result<void> enter_leaf_cgroup(const std::string& parent, const std::string& leaf) {
  if (leaf.empty() || leaf.find('/') != std::string::npos || leaf == "." || leaf == "..") {
    return base::fail(base::Errc::kBadInput, "leaf cgroup name must be one path component");
  }
  auto procs = read_text(parent + "/cgroup.procs");
  if (!procs) return base::fail_errno("read " + parent + "/cgroup.procs");
  if (procs->find_first_not_of(" \n") == std::string::npos) return {};
  const std::string dir = parent + "/" + leaf;
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return base::fail_errno("mkdir " + dir);
  // "0" moves the writing process, every thread with it.
  base::UniqueFd fd(::open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC | O_CREAT, 0644));
  if (!fd) return base::fail_errno("open " + dir + "/cgroup.procs");
  if (::write(fd.get(), "0", 1) != 1) return base::fail_errno("move into " + dir);
  return {};
}

WorkerCgroup::WorkerCgroup(WorkerCgroup&& o) noexcept
    : path_(std::exchange(o.path_, {})), procs_(std::move(o.procs_)) {}

WorkerCgroup& WorkerCgroup::operator=(WorkerCgroup&& o) noexcept {
  if (this != &o) {
    WorkerCgroup old(std::move(*this));
    path_ = std::exchange(o.path_, {});
    procs_ = std::move(o.procs_);
  }
  return *this;
}

WorkerCgroup::~WorkerCgroup() {
  if (path_.empty()) return;
  procs_.reset();
  if (::rmdir(path_.c_str()) == 0 || errno == ENOENT) return;
  if (errno == ENOTEMPTY) {
    // Not cgroupfs (whose interface files never block rmdir): remove the
    // plain files create() made, then the directory.
    for (const char* f : {"/cgroup.procs", "/memory.max"}) ::unlink((path_ + f).c_str());
    ::rmdir(path_.c_str());
  }
  // EBUSY: a member still lives; nothing a destructor can do about it.
}

base::Result<WorkerCgroup> WorkerCgroup::create(const MemoryBoundPlan& plan,
                                                const std::string& name,
                                                std::uint64_t limit_bytes) {
  if (plan.mode != MemoryBoundMode::kCgroupV2 || plan.cgroup_parent.empty()) {
    return base::fail(Errc::kBadInput, "worker cgroup: plan is not cgroup2");
  }
  if (!valid_name(name))
    return base::fail(Errc::kBadInput, "worker cgroup: bad name '" + name + "'");
  if (limit_bytes == 0) return base::fail(Errc::kBadInput, "worker cgroup: zero memory limit");

  const std::string subtree_file = plan.cgroup_parent + "/cgroup.subtree_control";
  auto subtree = read_text(subtree_file);
  if (!subtree) return base::fail_errno("read " + subtree_file);
  if (!controller_listed(*subtree, "memory")) {
    if (auto r = write_file(subtree_file, "+memory", false); !r) return tl::unexpected(r.error());
  }

  WorkerCgroup cg;
  const std::string path = plan.cgroup_parent + "/" + name;
  if (::mkdir(path.c_str(), 0755) != 0) {
    int err = errno;
    base::Error e{err == EEXIST ? Errc::kExists : Errc::kSyscall, err, "mkdir " + path};
    if (err == EACCES || err == EPERM) e.code = Errc::kPermission;
    return tl::unexpected(std::move(e));
  }
  cg.path_ = path;  // from here on the destructor removes it on failure
  if (auto r = write_file(path + "/memory.max", std::to_string(limit_bytes), true); !r) {
    return tl::unexpected(r.error());
  }
  // Without this a worker over memory.max swaps instead of being bounded.
  // Missing file (no swap accounting, or not cgroupfs): nothing to do.
  if (auto r = write_file(path + "/memory.swap.max", "0", false);
      !r && r.error().sys_errno != ENOENT) {
    return tl::unexpected(r.error());
  }
  cg.procs_.reset(::open((path + "/cgroup.procs").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  if (!cg.procs_) return base::fail_errno("open " + path + "/cgroup.procs");
  return cg;
}

}  // namespace mtw::supervisor
