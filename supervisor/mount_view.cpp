#include "supervisor/mount_view.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <string_view>
#include <thread>

namespace mtw::supervisor {
namespace {

namespace fs = std::filesystem;

// The resolver reads /etc (resolv.conf, hosts, nsswitch.conf) and loads NSS
// modules from /lib and /usr; /run may hold resolv.conf's target
// (systemd-resolved); /proc serves the secrets memfd (/proc/self/fd/4).
constexpr std::array<std::string_view, 16> kNeeded = {
    "/",     "/etc", "/usr", "/lib", "/lib64", "/lib32", "/bin",  "/sbin",
    "/proc", "/dev", "/sys", "/run", "/var",   "/tmp",   "/home", "/root"};

// Lexically normal, without a trailing '/' (except for "/" itself).
fs::path normal(const std::string& s) {
  fs::path p = fs::path(s).lexically_normal();
  if (!p.has_filename() && p != p.root_path()) p = p.parent_path();
  return p;
}

// "/a/b" is "/a/b" or below it.
bool within(const fs::path& p, const fs::path& dir) {
  auto [d, q] = std::mismatch(dir.begin(), dir.end(), p.begin(), p.end());
  return d == dir.end();
}

}  // namespace

bool netns_dir_detachable(const std::string& netns_dir) {
  if (netns_dir.empty() || netns_dir.front() != '/') return false;
  const std::string s = normal(netns_dir).string();
  return std::find(kNeeded.begin(), kNeeded.end(), s) == kNeeded.end();
}

std::vector<std::string> worker_hidden_dirs(const MountViewInput& in) {
  std::vector<std::string> wanted = {"/etc/mtwarden", "/var/lib/mtwarden", "/run/mtwarden",
                                     in.state_dir,    in.run_dir,          in.netns_dir};
  if (!in.config_path.empty()) {
    wanted.push_back(normal(in.config_path).parent_path().string());
  }
  const fs::path bin = fs::path(in.worker_bin).lexically_normal();
  std::vector<std::string> out;
  for (const auto& w : wanted) {
    if (w.empty() || w.front() != '/') continue;
    const fs::path p = normal(w);
    const std::string s = p.string();
    if (std::find(kNeeded.begin(), kNeeded.end(), s) != kNeeded.end()) continue;
    if (!in.worker_bin.empty() && within(bin, p)) continue;
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  }
  return out;
}

namespace {

// Runs on its own thread: unshare affects only the calling thread.
base::Result<base::UniqueFd> build_view(const std::vector<std::string>& hide,
                                        const std::vector<std::string>& detach) {
  if (::unshare(CLONE_NEWNS) != 0) return base::fail_errno("mount view: unshare(CLONE_NEWNS)");
  // A slave before anything is unmounted: an umount in a namespace still
  // sharing propagation with the host's would remove the host's mounts. A
  // slave (not private) also receives the host's later mounts and unmounts,
  // so the view, which lives as long as the supervisor, keeps no file
  // system busy that the operator unmounts on the host.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
    return base::fail_errno("mount view: make / a slave");
  }
  for (const auto& d : detach) {
    if (::umount2(d.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
      return base::fail_errno("mount view: detach " + d);
    }
  }
  for (const auto& d : hide) {
    if (::mount("mtwarden-hidden", d.c_str(), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                "size=4k,nr_inodes=1,mode=000") != 0 &&
        errno != ENOENT && errno != ENOTDIR) {  // absent, or below one hidden already
      return base::fail_errno("mount view: hide " + d);
    }
  }
  base::UniqueFd fd(::open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC));
  if (!fd) return base::fail_errno("mount view: open /proc/thread-self/ns/mnt");
  return fd;
}

}  // namespace

base::Result<base::UniqueFd> make_mount_view(const std::vector<std::string>& hide,
                                             const std::vector<std::string>& detach) {
  base::Result<base::UniqueFd> out = base::fail(base::Errc::kInternal, "mount view: not made");
  std::thread([&] { out = build_view(hide, detach); }).join();
  return out;
}

}  // namespace mtw::supervisor
