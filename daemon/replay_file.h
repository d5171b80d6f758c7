// The gate's replay file (docs/gate.md, "Replay cache"): the supervisor
// opens it and hands the gate the fd, since the gate's sandbox has no
// writable path. One function; no state.
#pragma once

#include <string>

#include "base/error.h"
#include "base/unique_fd.h"

namespace mtw::daemon {

// STATE_DIR/replay.cache, opened read-write (created 0600 if missing),
// O_CLOEXEC (the spawn maps it to the gate's fd by dup2). The gate sizes
// and fills it. Errors: kSyscall naming the path.
[[nodiscard]] base::Result<base::UniqueFd> open_replay_file(const std::string& state_dir);

}  // namespace mtw::daemon
