// Fuzzes the size and rate parsers (supervisor/units.h) that read the
// configuration's and the API's "10mbit", "5GiB", ... The whole input is one
// value. Properties:
//  - errors are kBadInput or kTooLarge, with a reason;
//  - a parsed value formats to text that parses back to the same value
//    (format is exact for every value the parser can produce).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "supervisor/units.h"

using mtw::base::Errc;
using namespace mtw::supervisor;

namespace {
bool expected_error(const mtw::base::Error& e) {
  return (e.code == Errc::kBadInput || e.code == Errc::kTooLarge) && !e.context.empty();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto s = parse_size(text)) {
    auto back = parse_size(format_size(*s));
    if (!back || *back != *s) std::abort();
  } else if (!expected_error(s.error())) {
    std::abort();
  }
  if (auto r = parse_rate(text)) {
    auto back = parse_rate(format_rate(*r));
    if (!back || *back != *r) std::abort();
  } else if (!expected_error(r.error())) {
    std::abort();
  }
  return 0;
}
