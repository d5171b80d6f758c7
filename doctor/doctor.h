// `mtwarden doctor`: checks a configuration against the live host and
// prints a verdict per check with its reason and fix (docs/operations.md,
// "mtwarden doctor"). The daemon's main hands it the arguments after
// "doctor"; everything else lives here.
// Blocking: the checks run one after another on the calling thread, each
// with its own deadline. Not for use inside the daemon's event loop.
#pragma once

#include <string>
#include <vector>

#include "base/error.h"
#include "doctor/verdict.h"

namespace mtw::doctor {

struct DoctorOptions {
  std::string config_path = "/etc/mtwarden/mtwarden.toml";
  bool json = false;
  std::vector<std::string> domains;           // checked besides the users' fake-TLS domains
  std::vector<std::string> public_addresses;  // this host's, for the DNS check; empty: detected
  std::string ca_file;                        // trusted besides the system store (mask.cert)
  std::string self_probe;                     // HOST:PORT of our listener; "": from the config
  std::string ntp = "pool.ntp.org";           // clock reference; "none": the mask's Date only
  int timeout_ms = 3000;                      // per connect / step
};

// The subcommand's --help text (also part of `mtwarden --help`).
std::string doctor_usage();

// Test-only fake time source: this many seconds are added to doctor's
// clock (docs/operations.md). Read once per run.
inline constexpr const char* kClockOffsetEnv = "MTWARDEN_DOCTOR_TEST_CLOCK_OFFSET_S";

// Parses `args` (what followed "doctor"). kBadInput naming the problem.
[[nodiscard]] base::Result<DoctorOptions> parse_doctor_args(const std::vector<std::string>& args);

// Runs every check; kBadInput / kSyscall when the configuration cannot be
// read (nothing was checked).
[[nodiscard]] base::Result<std::vector<Check>> run_doctor(const DoctorOptions& o);

// The whole subcommand: parse, run, print to stdout (errors to stderr) and
// return the exit code (verdict.h: kExitPass, kExitWarn, kExitFail,
// kExitConfig, kExitUsage).
int doctor_main(const std::vector<std::string>& args);

}  // namespace mtw::doctor
