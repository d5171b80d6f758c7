// MTW_CHECK: a broken invariant is a bug, not an error value. It logs to stderr
// (async-signal-safe write) and aborts; the supervisor restarts the process.
#pragma once

namespace mtw::base {
[[noreturn]] void check_failed(const char* expr, const char* file, int line) noexcept;
}  // namespace mtw::base

#define MTW_CHECK(cond)                                     \
  do {                                                      \
    if (!(cond)) [[unlikely]]                               \
      ::mtw::base::check_failed(#cond, __FILE__, __LINE__); \
  } while (0)
