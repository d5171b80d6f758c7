// The mtwarden supervisor process: loads the configuration, owns the store,
// binds the public listeners, spawns the gate and one confined worker per
// user inside that user's cell, accounts usage from the cells' veth counters
// every sweep, applies the quota / unique-IP / connection policy live, and
// reloads on SIGHUP. One io_context on the calling thread.
#pragma once

#include <string>

namespace mtw::daemon {

inline constexpr const char* kDefaultConfigPath = "/etc/mtwarden/mtwarden.toml";

struct DaemonOptions {
  std::string config_path = kDefaultConfigPath;
  // Write the commented default configuration to config_path when the file
  // does not exist (the README's run command does this on a fresh host).
  bool install_default_config = false;
  std::string worker_bin;  // empty: next to this executable, else the build tree's
  std::string gate_bin;
  std::string log_level;    // overrides [server] log_level when set
  bool check_only = false;  // validate the configuration and exit
};

// Runs until SIGINT/SIGTERM; returns the process exit status (0 after a
// clean shutdown, 1 when the start failed; the reason is on stderr).
int run_daemon(const DaemonOptions& options);

// The --help text of mtwarden.
std::string daemon_usage();

}  // namespace mtw::daemon
