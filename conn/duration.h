// Durations on the child programs' command lines: "12", "1.5" (seconds),
// "2s" or "250ms". Thread-safe: a pure function.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/error.h"

namespace mtw::conn {

// Milliseconds; errors (kBadInput) when not a non-negative number or over ~4e9 ms.
[[nodiscard]] base::Result<std::uint32_t> parse_duration_ms(std::string_view text);

}  // namespace mtw::conn
