// Named network namespaces: a namespace kept alive by a bind mount at
// <run_dir>/<name>, exactly as `ip netns add` does, so `ip netns` and
// `ip netns exec` see it when run_dir is /run/netns.
// Creation never moves the calling thread: the namespace is made on a
// throw-away thread (unshare affects only that thread).
// Thread-safety: distinct objects may be used from distinct threads.
#pragma once

#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "netns/nl.h"

namespace mtw::netns {

// Makes sure `run_dir` exists and is a shared mount point (as iproute2 does),
// so namespaces mounted there are visible to processes that later unshare
// their mount namespace. Idempotent.
[[nodiscard]] base::Result<void> prepare_run_dir(const std::string& run_dir);

// Unmounts and unlinks <run_dir>/<name>. Already gone is success.
[[nodiscard]] base::Result<void> remove_netns(const std::string& run_dir, const std::string& name);

// Names of the entries in run_dir (each a namespace mount, or a stale file).
[[nodiscard]] base::Result<std::vector<std::string>> list_netns(const std::string& run_dir);

// Owns one named network namespace; the destructor removes it (unmount +
// unlink; the kernel frees the namespace once nothing else holds it).
// Move-only.
class NamedNetns {
 public:
  NamedNetns() = default;
  NamedNetns(NamedNetns&& o) noexcept;
  NamedNetns& operator=(NamedNetns&& o) noexcept;
  NamedNetns(const NamedNetns&) = delete;
  ~NamedNetns();

  // Creates the namespace. kExists when <run_dir>/<name> already exists
  // (nothing is touched then), kPermission without CAP_SYS_ADMIN. When
  // `inside` is given it receives a netlink socket bound in the new
  // namespace, to configure it without setns on this thread.
  [[nodiscard]] static base::Result<NamedNetns> create(const std::string& run_dir,
                                                       const std::string& name,
                                                       NlSocket* inside = nullptr);
  // Takes ownership of an existing namespace mount (reconciliation).
  // kNotFound when it is not there.
  [[nodiscard]] static base::Result<NamedNetns> adopt(const std::string& run_dir,
                                                      const std::string& name);

  // A fresh O_RDONLY|O_CLOEXEC fd of the namespace (for setns, veth peer
  // placement, socket_in). kNotFound when it was removed behind our back.
  [[nodiscard]] base::Result<base::UniqueFd> open() const;
  // Removes the namespace now; idempotent.
  [[nodiscard]] base::Result<void> remove();
  // Forgets the namespace without removing it.
  void release() noexcept { path_.clear(); }

  const std::string& path() const noexcept { return path_; }
  const std::string& name() const noexcept { return name_; }
  const std::string& run_dir() const noexcept { return run_dir_; }
  bool valid() const noexcept { return !path_.empty(); }

 private:
  NamedNetns(std::string run_dir, std::string name);
  std::string run_dir_, name_, path_;
};

}  // namespace mtw::netns
