// What a worker's private mount namespace hides: the directories holding
// the supervisor's configuration (every user's secrets), its store and its
// run files, and the pinned network namespaces of the other cells. Each is
// covered by an empty read-only tmpfs in the worker's own mount namespace
// (SpawnSpec::hide_dirs); the host's view is untouched. Pure: no I/O.
#pragma once

#include <string>
#include <vector>

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

}  // namespace mtw::supervisor
