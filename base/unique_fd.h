// UniqueFd: sole owner of one file descriptor; closes it on destruction.
// Move-only, never throws. Not thread-safe (like the fd it wraps).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <utility>

namespace mtw::base {

class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }
  // Gives up ownership; the caller must close the result.
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

// Marks `fd` close-on-exec, for descriptors that an API (Asio's acceptors,
// accept(2) without accept4) opened without it. False with errno set.
[[nodiscard]] inline bool set_cloexec(int fd) noexcept {
  const int flags = ::fcntl(fd, F_GETFD);
  return flags >= 0 && (flags & FD_CLOEXEC || ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC) == 0);
}

}  // namespace mtw::base
