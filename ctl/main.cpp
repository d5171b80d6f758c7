// mtwardenctl: the command-line client of mtwarden's management API.
// Parses argv (ctl/args.h), sends one request (ctl/http_client.h), prints
// the answer (ctl/run.h). Exit codes: see ctl/args.h and docs/cli.md.
#include <cstdlib>
#include <exception>
#include <iostream>

#include "ctl/args.h"
#include "ctl/http_client.h"
#include "ctl/run.h"

namespace {

constexpr std::chrono::seconds kTimeout{30};

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mtw::ctl;
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    auto parsed = parse_command_line(args, Env{env("MTWARDEN_SOCKET"), env("MTWARDEN_TOKEN")});
    if (!parsed) {
      std::cerr << "mtwardenctl: " << parsed.error().context << "\n";
      return kExitUsage;
    }
    if (!parsed->invocation) {
      std::cout << parsed->help;
      return kExitOk;
    }
    auto transport = make_http_transport(parsed->invocation->endpoint, kTimeout);
    int rc = run(*parsed->invocation, *transport, std::cout, std::cerr);
    std::cout.flush();
    return rc;
  } catch (const std::exception& e) {
    std::cerr << "mtwardenctl: internal error: " << e.what() << "\n";
    return kExitUnexpected;
  }
}
