// mtwarden-worker: parse flags, set up logging, run the Server.
#include <cstdio>
#include <exception>
#include <string_view>
#include <vector>

#include "base/log.h"
#include "worker/options.h"
#include "worker/server.h"

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
  mtw::base::init_logging(opts->log_level);
  auto log = mtw::base::logger("worker");
  try {
    mtw::worker::Server server(std::move(*opts));
    if (auto r = server.start(); !r) {
      log->error("start failed error={}", r.error().to_string());
      return 1;
    }
    return server.run();
  } catch (const std::exception& e) {
    log->critical("worker failed error={}", e.what());
    return 1;
  }
}
