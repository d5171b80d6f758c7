#include "base/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <string>

#include "base/unique_fd.h"

namespace mtw::base {
namespace {

std::string dir_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// write(2) until done; false with errno set on failure.
bool write_all(int fd, std::string_view data) {
  for (std::size_t done = 0; done < data.size();) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// Content and mode first, then the name: open(2)'s mode went through the
// umask; the caller asked for exactly `mode`.
Result<void> fill(int fd, const std::string& what, std::string_view data, mode_t mode,
                  Durability durability) {
  if (!write_all(fd, data)) return fail_errno("write " + what);
  if (::fchmod(fd, mode) != 0) return fail_errno("chmod " + what);
  if (durability == Durability::kFsync && ::fsync(fd) != 0) return fail_errno("fsync " + what);
  return {};
}

Result<void> rename_into_place(const std::string& tmp, const std::string& path,
                               Durability durability) {
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return fail_errno("rename " + tmp + " to " + path, err);
  }
  // The rename itself is durable only once the directory is on disk. A
  // directory the caller may write but not read cannot be opened for that:
  // the file is in place, so that is not a failure.
  if (durability == Durability::kFsync) {
    UniqueFd dir(::open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir.valid() && errno != EACCES) return fail_errno("open the directory of " + path);
    if (dir.valid() && ::fsync(dir.get()) != 0) return fail_errno("fsync the directory of " + path);
  }
  return {};
}

}  // namespace

Result<void> write_file_atomic(const std::string& path, std::string_view data, mode_t mode,
                               Durability durability) {
  static std::atomic<unsigned> counter{0};
  const std::string tmp =
      path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  // An unnamed file (O_TMPFILE) gets its name only after the data is written
  // and synced, so a process killed meanwhile leaves nothing behind; the
  // named temporary remains only for the instant between link and rename.
  UniqueFd anon(::open(dir_of(path).c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, mode));
  if (anon.valid()) {
    if (auto r = fill(anon.get(), tmp, data, mode, durability); !r) return r;
    const std::string self = "/proc/self/fd/" + std::to_string(anon.get());
    if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, tmp.c_str(), AT_SYMLINK_FOLLOW) == 0)
      return rename_into_place(tmp, path, durability);
    // No /proc (a bare chroot), or /proc/self/fd owned by root in a
    // non-dumpable process: the named temporary below (which reports a real
    // failure such as a full disk itself).
  } else if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
    return fail_errno("create a file in " + dir_of(path));
  }
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd.valid()) return fail_errno("create " + tmp);
  if (auto r = fill(fd.get(), tmp, data, mode, durability); !r) {
    ::unlink(tmp.c_str());
    return r;
  }
  return rename_into_place(tmp, path, durability);
}

Result<std::string> read_fd_all(int fd, std::size_t max_bytes) {
  std::string text;
  std::size_t used = 0;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {  // a memfd: its size is known
    if (static_cast<std::uint64_t>(st.st_size) > max_bytes)
      return fail(Errc::kTooLarge, "over " + std::to_string(max_bytes) + " bytes");
    text.reserve(static_cast<std::size_t>(st.st_size) + 64 * 1024);
  }
  for (;;) {
    if (text.size() - used < 64 * 1024) text.resize(used + 256 * 1024);
    ssize_t n = ::pread(fd, text.data() + used, text.size() - used, static_cast<off_t>(used));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("read");
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
    if (used > max_bytes)
      return fail(Errc::kTooLarge, "over " + std::to_string(max_bytes) + " bytes");
  }
  text.resize(used);
  return text;
}

}  // namespace mtw::base
