// mtwarden-worker: parse flags, set up logging, run the Server.
#include <cstdio>
#include <exception>
#include <string_view>
#include <vector>

#include "base/log.h"
#include "conn/syscall_filter.h"
#include "worker/options.h"
#include "worker/server.h"

namespace {

int confinement_check() {
  auto rep = mtw::conn::run_confinement_check();
  if (!rep) {
    std::fprintf(stderr, "mtwarden-worker: %s\n", rep.error().to_string().c_str());
    return 1;
  }
  std::fputs(mtw::conn::format_confinement_report(*rep).c_str(), stdout);
  return rep->ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  auto opts = mtw::worker::parse_options(args);
  if (!opts) {
    std::fprintf(stderr, "mtwarden-worker: %s\nTry 'mtwarden-worker --help'.\n",
                 opts.error().context.c_str());
    return 2;
  }
  if (opts->help) {
    std::fputs(mtw::worker::usage_text().c_str(), stdout);
    return 0;
  }
  if (opts->confinement_check) return confinement_check();
  mtw::base::init_logging(opts->log_level);
  auto log = mtw::base::logger("worker");
  try {
    mtw::worker::Server server(std::move(*opts));
    if (auto r = server.start(); !r) {
      log->error("start failed error={}", r.error().to_string());
      return 1;
    }
    // After start-up (secrets read, listeners bound), before the first
    // client byte or control message is read. Not in the spawn child before
    // exec: the filter's SIGSYS handler must exist before a denied call can
    // trap, and exec resets handlers; standalone workers get it as well.
    if (auto r = mtw::conn::install_syscall_filter(); !r) {
      log->error("seccomp filter not installed error={}", r.error().to_string());
      return 1;
    }
    return server.run();
  } catch (const std::exception& e) {
    log->critical("worker failed error={}", e.what());
    return 1;
  }
}
