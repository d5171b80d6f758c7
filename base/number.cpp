#include "base/number.h"

#include <charconv>
#include <string>
#include <system_error>

namespace mtw::base {

Result<std::uint32_t> parse_u32(std::string_view text) {
  std::uint32_t out = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return fail(Errc::kBadInput, "not a non-negative integer: " + std::string(text));
  }
  return out;
}

}  // namespace mtw::base
