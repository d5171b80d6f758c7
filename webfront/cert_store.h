// The operator's real certificate and private key (PEM files) as a TLS
// server context, picked up again when either file changes on disk (a
// renewal replaces them). Connections keep the context they started with
// (shared ownership), so a reload drops nobody; new handshakes use the new
// one. A change that does not load (a half-written renewal, a key that does
// not match the certificate) keeps the old context and is retried at every
// later check until it loads. Files are identified by (device, inode, size,
// mtime) after following symlinks, so a renewal that retargets a symlink is
// seen. Thread-safety: one owner (the front's io_context thread).
#pragma once

#include <sys/types.h>

#include <ctime>
#include <memory>
#include <string>

#include "base/error.h"

namespace boost::asio::ssl {
class context;
}

namespace mtw::webfront {

using base::Result;

class CertStore {
 public:
  // Loads both files now. kNotFound / kSyscall for a file that cannot be
  // read, kCrypto for PEM that does not parse or a key that does not match.
  [[nodiscard]] static Result<CertStore> open(std::string cert_file, std::string key_file);

  enum class Check {
    kUnchanged,  // same files as the context in use (or a failure already reported)
    kReloaded,   // a new context is in use
    kFailed,     // the files changed but do not load; error() says why
  };
  Check check();
  const base::Error& error() const noexcept { return error_; }

  std::shared_ptr<boost::asio::ssl::context> context() const noexcept { return ctx_; }
  std::uint64_t reloads() const noexcept { return reloads_; }
  std::uint64_t failures() const noexcept { return failures_; }

 private:
  struct Stamp {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    timespec mtime{};
    bool operator==(const Stamp& o) const noexcept {
      return dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
             mtime.tv_nsec == o.mtime.tv_nsec;
    }
  };
  struct Stamps {
    Stamp cert, key;
    bool operator==(const Stamps&) const noexcept = default;
  };
  Result<Stamps> stat_files() const;
  Result<std::shared_ptr<boost::asio::ssl::context>> build() const;

  std::string cert_file_, key_file_;
  std::shared_ptr<boost::asio::ssl::context> ctx_;
  Stamps loaded_{};
  Stamps failed_{};
  bool have_failed_ = false;
  base::Error error_;
  std::uint64_t reloads_ = 0;
  std::uint64_t failures_ = 0;
};

}  // namespace mtw::webfront
