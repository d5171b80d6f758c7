// The workers' mount view: one mount namespace, made once at start and
// shared by every worker (SpawnSpec::mountns_fd), in which the directories
// holding the supervisor's configuration (every user's secrets), its store
// and run files, and the other cells' network namespace pins are hidden.
// One namespace for all: each copy of the mount table costs time in
// proportion to the host's mounts (one pin per cell), so a namespace per
// worker would make starting N workers O(N^2) and stall the supervisor
// while each child copies. The host's view is untouched.
// worker_hidden_dirs/netns_dir_detachable are pure; make_mount_view does the
// mounts on a short-lived thread of its own.
#pragma once

#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"

namespace mtw::supervisor {

struct MountViewInput {
  std::string config_path;  // the configuration file (its directory is hidden)
  std::string state_dir, run_dir, netns_dir;
  std::string worker_bin;  // never hidden, nor any directory above it (exec needs it)
};

// Absolute, normalised, deduplicated directories to cover, always including
// /etc/mtwarden, /var/lib/mtwarden and /run/mtwarden. Never a directory a
// relay needs ("/", /etc, /usr, /lib*, /bin, /sbin, /proc, /dev, /sys,
// /run, /var, /tmp, /home) nor one holding the worker binary; a config file
// in such a directory is not hidden (its 0640 mode is its protection).
std::vector<std::string> worker_hidden_dirs(const MountViewInput& in);

// Whether the netns pin directory may be detached in a worker's mount
// namespace (SpawnSpec::detach_dirs): absolute and not a directory a relay
// needs (detaching /run would take resolv.conf's target with it).
bool netns_dir_detachable(const std::string& netns_dir);

// Makes the view: a new mount namespace (on a throw-away thread), "/" made
// a slave recursively (the host's later mount events reach the view, none
// of the view's reach the host), each of
// `detach` unmounted with MNT_DETACH with everything below it (the netns
// pins: the copy would otherwise keep every cell's namespace alive), then
// each of `hide` covered by an empty read-only tmpfs of mode 0 (nosuid,
// nodev, noexec). Paths that do not exist (or are not a mount point, for
// `detach`) are skipped. Returns an fd of the namespace (/proc/.../ns/mnt),
// which keeps it alive. Errors: kSyscall naming the step and the path.
[[nodiscard]] base::Result<base::UniqueFd> make_mount_view(const std::vector<std::string>& hide,
                                                           const std::vector<std::string>& detach);

}  // namespace mtw::supervisor
