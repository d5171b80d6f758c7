// Files: whole-file replacement that readers never see half done, and
// reading a whole (mem)fd. Replacement: the data goes to
// a temporary file beside the target (same directory, so rename(2) is
// atomic), which is then renamed over it. On any failure the temporary is
// removed and the old file is left as it was. The temporary is an unnamed
// O_TMPFILE linked in only after its data (and, with kFsync, its sync), so a
// process killed while writing leaves nothing; a file system without
// O_TMPFILE or a host without /proc gets a named temporary instead.
// Thread-safe (the temporary's name carries the pid and a per-process
// counter).
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "base/error.h"

namespace mtw::base {

enum class Durability {
  kFsync,    // data on disk before the rename: state an operator relies on
  kNoFsync,  // run-time files (tmpfs, rewritten every few seconds)
};

// Writes `data` to `path` with permission bits `mode` (the umask does not
// apply). With kFsync the directory is synced after the rename too. Errors:
// kSyscall naming the step (create, write, chmod, fsync, rename) and the
// path.
[[nodiscard]] Result<void> write_file_atomic(const std::string& path, std::string_view data,
                                             mode_t mode, Durability durability);

// Everything in `fd` from offset 0 to EOF, read with pread (the file
// position is neither used nor moved): the memfds the supervisor hands its
// children. Errors: kSyscall (read), kTooLarge (more than max_bytes).
[[nodiscard]] Result<std::string> read_fd_all(int fd, std::size_t max_bytes);

}  // namespace mtw::base
