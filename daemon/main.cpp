// mtwarden: the supervisor. Thin: parses the command line, runs the daemon.
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/daemon.h"
#include "doctor/doctor.h"

namespace mtw::daemon {

std::string daemon_usage() {
  return "Usage: mtwarden [OPTIONS]\n"
         "       mtwarden doctor [DOCTOR OPTIONS]   (see below)\n"
         "Runs the mtwarden supervisor: one isolated MTProxy worker per user, each in its\n"
         "own network namespace, under its own uid, behind its own traffic shaper.\n"
         "Must start as root. Runs in the foreground until SIGINT/SIGTERM, which tear\n"
         "down every cell it made; SIGHUP reloads the configuration.\n"
         "\n"
         "  --config PATH          configuration file (default /etc/mtwarden/mtwarden.toml)\n"
         "  --install-default-config\n"
         "                         write the commented default configuration to PATH first\n"
         "                         when no file exists there\n"
         "  --check                validate the configuration and its clashes with this host\n"
         "                         (cell pools on existing addresses, uid/gid ranges of\n"
         "                         accounts) and exit (0 = valid)\n"
         "  --worker-bin PATH      mtwarden-worker to run (default: next to this program)\n"
         "  --gate-bin PATH        mtwarden-gate to run (default: next to this program)\n"
         "  --log-level LEVEL      trace, debug, info, warn, error, critical, off\n"
         "                         (default: [server] log_level)\n"
         "  --help                 this text\n"
         "\n"
         "Exit status: 0 after a clean stop or a valid --check; 1 when the start failed\n"
         "(the reason, with FILE:LINE:COL for configuration errors, is on stderr);\n"
         "2 for a bad command line.\n"
         "Files: <state_dir>/state.db (users, usage, history), <run_dir>/status.json\n"
         "(live state, rewritten every accounting sweep). See docs/configuration.md.\n"
         "\n" +
         mtw::doctor::doctor_usage();
}

}  // namespace mtw::daemon

int main(int argc, char** argv) {
  using namespace mtw::daemon;
  // The doctor subcommand is a program of its own (doctor/doctor.h).
  if (argc > 1 && std::string_view(argv[1]) == "doctor")
    return mtw::doctor::doctor_main(std::vector<std::string>(argv + 2, argv + argc));
  DaemonOptions o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](std::string& out) -> bool {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "mtwarden: %s needs a value\n", argv[i]);
        return false;
      }
      out = argv[++i];
      return true;
    };
    if (a == "--help" || a == "-h") {
      std::fputs(daemon_usage().c_str(), stdout);
      return 0;
    } else if (a == "--config") {
      if (!value(o.config_path)) return 2;
    } else if (a == "--install-default-config") {
      o.install_default_config = true;
    } else if (a == "--check") {
      o.check_only = true;
    } else if (a == "--worker-bin") {
      if (!value(o.worker_bin)) return 2;
    } else if (a == "--gate-bin") {
      if (!value(o.gate_bin)) return 2;
    } else if (a == "--log-level") {
      if (!value(o.log_level)) return 2;
    } else {
      std::fprintf(stderr, "mtwarden: unknown option %s (see --help)\n", argv[i]);
      return 2;
    }
  }
  return run_daemon(o);
}
