// Whole decimal numbers from text (command-line flags, small wire fields):
// digits only, no sign, no spaces, no leading "+", the whole string used.
// The one parser the children's option readers share. Pure; thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/error.h"

namespace mtw::base {

// kBadInput "not a non-negative integer: TEXT" for anything else, including
// an empty string and a value over 2^32 - 1.
[[nodiscard]] Result<std::uint32_t> parse_u32(std::string_view text);

}  // namespace mtw::base
