// mtwarden-gate: parse flags, set up logging, run the Gate (docs/gate.md).
#include <cstdio>
#include <exception>
#include <string_view>
#include <vector>

#include "base/log.h"
#include "conn/syscall_filter.h"
#include "gate/gate.h"
#include "gate/gate_options.h"

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  auto opts = mtw::gate::parse_gate_options(args);
  if (!opts) {
    std::fprintf(stderr, "mtwarden-gate: %s\nTry 'mtwarden-gate --help'.\n",
                 opts.error().context.c_str());
    return 2;
  }
  if (opts->help) {
    std::fputs(mtw::gate::gate_usage_text().c_str(), stdout);
    return 0;
  }
  mtw::base::init_logging(opts->log_level);
  auto log = mtw::base::logger("gate");
  try {
    mtw::gate::Gate gate(std::move(*opts));
    if (auto r = gate.start(); !r) {
      std::fprintf(stderr, "mtwarden-gate: %s\n", r.error().context.c_str());
      log->error("start failed error={}", r.error().to_string());
      return r.error().code == mtw::base::Errc::kBadInput ? 2 : 1;
    }
    // The filter both child programs install (worker/main.cpp says why here
    // and not before exec).
    if (auto r = mtw::conn::install_syscall_filter(); !r) {
      log->error("seccomp filter not installed error={}", r.error().to_string());
      return 1;
    }
    return gate.run();
  } catch (const std::exception& e) {
    log->critical("gate failed error={}", e.what());
    return 1;
  }
}
