// Shows secrets made at first start (the first user's links, the API bearer
// token) to the person starting the daemon and to nobody else. On a
// terminal they are printed. Otherwise stdout is a log (under systemd, the
// journal, readable by the adm group and kept for months), so they go to a
// file only root can read, and the caller logs its path instead.
// Thread-safe (plain syscalls); not async-signal-safe.
#pragma once

#include <string>
#include <string_view>

#include "base/error.h"

namespace mtw::supervisor {

enum class RevealedTo { kTerminal, kFile };

// Writes `text` to `out_fd` when that is a terminal, else appends it to
// `path` (created 0600, an existing file forced to 0600, no symlink
// followed, fsynced). Errors name the path and carry errno (kSyscall).
[[nodiscard]] base::Result<RevealedTo> reveal_secrets(std::string_view text, int out_fd,
                                                      const std::string& path);

}  // namespace mtw::supervisor
