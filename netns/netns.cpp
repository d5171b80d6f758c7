#include "netns/netns.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <thread>
#include <utility>

namespace mtw::netns {

using base::Errc;

namespace {

base::Error sys_error(std::string context, int err) {
  base::Error e{Errc::kSyscall, err, std::move(context)};
  if (err == EPERM || err == EACCES) {
    e.code = Errc::kPermission;
    e.context += " (CAP_SYS_ADMIN required)";
  }
  return e;
}

}  // namespace

base::Result<void> prepare_run_dir(const std::string& run_dir) {
  if (::mkdir(run_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return tl::unexpected(sys_error("mkdir run dir " + run_dir, errno));
  }
  // Same dance as iproute2: make the dir a shared mount point, bind-mounting
  // it onto itself first if it is not a mount point yet (EINVAL).
  if (::mount("", run_dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) == 0) return {};
  if (errno != EINVAL) return tl::unexpected(sys_error("make-shared " + run_dir, errno));
  if (::mount(run_dir.c_str(), run_dir.c_str(), "none", MS_BIND | MS_REC, nullptr) != 0) {
    return tl::unexpected(sys_error("bind-mount " + run_dir, errno));
  }
  if (::mount("", run_dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) != 0) {
    return tl::unexpected(sys_error("make-shared " + run_dir, errno));
  }
  return {};
}

base::Result<void> remove_netns(const std::string& run_dir, const std::string& name) {
  std::string path = run_dir + "/" + name;
  // EINVAL: not a mount point (a half-created entry); ENOENT: already gone.
  if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return tl::unexpected(sys_error("umount netns " + path, errno));
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return tl::unexpected(sys_error("unlink netns " + path, errno));
  }
  return {};
}

base::Result<std::vector<std::string>> list_netns(const std::string& run_dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(run_dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return out;
    return base::fail_errno("opendir " + run_dir);
  }
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(std::move(n));
  }
  ::closedir(d);
  return out;
}

NamedNetns::NamedNetns(std::string run_dir, std::string name)
    : run_dir_(std::move(run_dir)), name_(std::move(name)), path_(run_dir_ + "/" + name_) {}

NamedNetns::NamedNetns(NamedNetns&& o) noexcept
    : run_dir_(std::move(o.run_dir_)),
      name_(std::move(o.name_)),
      path_(std::exchange(o.path_, {})) {}

NamedNetns& NamedNetns::operator=(NamedNetns&& o) noexcept {
  if (this != &o) {
    (void)remove();
    run_dir_ = std::move(o.run_dir_);
    name_ = std::move(o.name_);
    path_ = std::exchange(o.path_, {});
  }
  return *this;
}

NamedNetns::~NamedNetns() { (void)remove(); }

base::Result<NamedNetns> NamedNetns::create(const std::string& run_dir, const std::string& name,
                                            NlSocket* inside) {
  NamedNetns ns(run_dir, name);
  // O_EXCL is the clash check: an existing entry (ours or not) is never touched.
  int fd = ::open(ns.path_.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (fd < 0) {
    int err = errno;
    ns.path_.clear();  // nothing of ours to remove
    if (err == EEXIST) {
      return tl::unexpected(
          base::Error{Errc::kExists, err, "netns exists " + run_dir + "/" + name});
    }
    return tl::unexpected(sys_error("create netns mount point " + run_dir + "/" + name, err));
  }
  ::close(fd);
  base::Result<void> result;
  try {
    // unshare() moves only this short-lived thread into the new namespace;
    // the bind mount keeps the namespace alive after the thread exits.
    std::thread t([&] {
      if (::unshare(CLONE_NEWNET) != 0) {
        result = tl::unexpected(sys_error("unshare(CLONE_NEWNET)", errno));
        return;
      }
      if (::mount("/proc/thread-self/ns/net", ns.path_.c_str(), "none", MS_BIND, nullptr) != 0) {
        result = tl::unexpected(sys_error("bind-mount netns " + ns.path_, errno));
        return;
      }
      if (inside != nullptr) {
        auto s = NlSocket::connect();
        if (!s) {
          result = tl::unexpected(s.error());
          return;
        }
        *inside = std::move(*s);
      }
    });
    t.join();
  } catch (const std::system_error& e) {
    result = base::fail_errno(std::string("thread for unshare: ") + e.what(), e.code().value());
  }
  if (!result) return tl::unexpected(result.error());  // ~NamedNetns unlinks the file
  return ns;
}

base::Result<NamedNetns> NamedNetns::adopt(const std::string& run_dir, const std::string& name) {
  NamedNetns ns(run_dir, name);
  struct stat st {};
  if (::stat(ns.path_.c_str(), &st) != 0) {
    int err = errno;
    ns.path_.clear();
    return tl::unexpected(base::Error{err == ENOENT ? Errc::kNotFound : Errc::kSyscall, err,
                                      "stat netns " + run_dir + "/" + name});
  }
  return ns;
}

base::Result<base::UniqueFd> NamedNetns::open() const {
  base::UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    int err = errno;
    return tl::unexpected(
        base::Error{err == ENOENT ? Errc::kNotFound : Errc::kSyscall, err, "open netns " + path_});
  }
  return fd;
}

base::Result<void> NamedNetns::remove() {
  if (path_.empty()) return {};
  auto r = remove_netns(run_dir_, name_);
  if (r) path_.clear();
  return r;
}

}  // namespace mtw::netns
