#include "supervisor/reveal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "base/unique_fd.h"

namespace mtw::supervisor {
namespace {

// All of `data`, retrying short writes and EINTR; false with errno set.
bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

base::Result<RevealedTo> reveal_secrets(std::string_view text, int out_fd,
                                        const std::string& path) {
  if (::isatty(out_fd) == 1) {
    if (!write_all(out_fd, text)) return base::fail_errno("write secrets to the terminal");
    return RevealedTo::kTerminal;
  }
  base::UniqueFd fd(
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (fd.get() < 0) return base::fail_errno("open " + path);
  // An existing file keeps its mode on open: make it 0600 before writing.
  if (::fchmod(fd.get(), 0600) != 0) return base::fail_errno("chmod 0600 " + path);
  if (!write_all(fd.get(), text)) return base::fail_errno("write " + path);
  if (::fsync(fd.get()) != 0) return base::fail_errno("fsync " + path);
  return RevealedTo::kFile;
}

}  // namespace mtw::supervisor
