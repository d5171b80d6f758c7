#include "base/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

#include "base/unique_fd.h"

namespace mtw::base {

Result<void> write_file_atomic(const std::string& path, std::string_view data, mode_t mode,
                               Durability durability) {
  static std::atomic<unsigned> counter{0};
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd.valid()) return fail_errno("create " + tmp);
  auto failed = [&tmp](std::string step) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return fail_errno(std::move(step), err);
  };
  for (std::size_t done = 0; done < data.size();) {
    const ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return failed("write " + tmp);
    done += static_cast<std::size_t>(n);
  }
  // open(2)'s mode went through the umask; the caller asked for exactly `mode`.
  if (::fchmod(fd.get(), mode) != 0) return failed("chmod " + tmp);
  if (durability == Durability::kFsync && ::fsync(fd.get()) != 0) return failed("fsync " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return failed("rename " + tmp + " to " + path);
  return {};
}

}  // namespace mtw::base
