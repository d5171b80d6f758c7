#include "daemon/replay_file.h"

#include <fcntl.h>

namespace mtw::daemon {

base::Result<base::UniqueFd> open_replay_file(const std::string& state_dir) {
  const std::string path = state_dir + "/replay.cache";
  base::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return base::fail_errno("open " + path);
  return fd;
}

}  // namespace mtw::daemon
