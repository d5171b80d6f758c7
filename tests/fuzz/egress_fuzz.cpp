// Fuzzes the egress text form (proto/egress.h) and checks that whatever
// parses formats back to text that parses to the same value. Aborts (a
// finding) on a round-trip mismatch or a credential in an error text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "proto/egress.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mtw::proto;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = parse_egress(text);
  if (!parsed) {
    if (parsed.error().context.find("password=") != std::string::npos) std::abort();
    return 0;
  }
  const auto again = parse_egress(format_egress(*parsed));
  if (!again || !(*again == *parsed)) std::abort();
  return 0;
}
