// Test sandbox for the privileged netns tests: main() (sandbox.cpp) moves the
// whole test process into a fresh network + mount namespace before any test
// runs, with private mounts and a tmpfs on /run, so cells, veths, nft tables
// and traffic never reach the host. The same binary doubles as a helper
// program (argv[1] == "--helper") that tests start inside cells.
#pragma once

#include <string>

namespace mtw::netns::testing {

// Empty when the sandbox is up; otherwise why the privileged tests skip.
const std::string& sandbox_skip_reason();

// Absolute path of this test binary (for run_in_netns helpers).
std::string self_exe();

// Helper exit codes of "--helper connect".
inline constexpr int kConnectOk = 0;
inline constexpr int kConnectRefused = 1;
inline constexpr int kConnectTimeout = 2;
inline constexpr int kConnectError = 3;

}  // namespace mtw::netns::testing

#define MTW_REQUIRE_SANDBOX()                                       \
  do {                                                              \
    if (!::mtw::netns::testing::sandbox_skip_reason().empty())      \
      GTEST_SKIP() << ::mtw::netns::testing::sandbox_skip_reason(); \
  } while (0)
