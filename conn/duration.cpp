#include "conn/duration.h"

#include <charconv>
#include <cmath>

namespace mtw::conn {

using base::Errc;
using base::fail;

base::Result<std::uint32_t> parse_duration_ms(std::string_view text) {
  double scale = 1000.0;
  if (text.size() > 2 && text.ends_with("ms")) {
    scale = 1.0;
    text.remove_suffix(2);
  } else if (text.size() > 1 && text.ends_with("s")) {
    text.remove_suffix(1);
  }
  double v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size() || !(v >= 0) ||
      v * scale > 4.0e9) {
    return fail(Errc::kBadInput, "bad duration (want seconds, e.g. 10, 1.5 or 250ms)");
  }
  return static_cast<std::uint32_t>(std::llround(v * scale));
}

}  // namespace mtw::conn
