// The user-name rule, in one place for the configuration, the store, the
// API, D-Bus and the CLI. Pure, thread-safe, no dependencies, so the JSON
// input fuzzer can compile it in.
#pragma once

#include <cstddef>
#include <string_view>

namespace mtw::supervisor {

inline constexpr std::size_t kMaxUserNameLength = 64;

// A user name: 1..64 of [A-Za-z0-9_.-], not starting with '.' or '-'. Names
// end up in paths, file names, log lines and command lines: so no ".", "..",
// hidden files, option-like "-x", no spaces or control characters.
bool valid_user_name(std::string_view name) noexcept;
inline constexpr std::string_view kUserNameRule =
    "1..64 of [A-Za-z0-9_.-], not starting with '.' or '-'";

// 1..64 of [A-Za-z0-9_.-]: a name an earlier version may have stored (it
// allowed a leading '.' or '-'). Used to look users up, so such a user can
// still be shown, changed and deleted; never to create one.
bool addressable_user_name(std::string_view name) noexcept;

}  // namespace mtw::supervisor
