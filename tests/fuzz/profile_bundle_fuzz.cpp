// Fuzzes parse_profile_bundle (the mask-profiles control message's content):
// whatever it accepts formats back to a text that parses to the same
// profiles, every one with a distinct non-empty domain.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "proto/tls_profile.h"

namespace {

using namespace mtw::proto;

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto ps = parse_profile_bundle(text);
  if (!ps) return 0;
  require(ps->size() <= kMaxBundleProfiles);
  std::set<std::string> domains;
  for (const auto& p : *ps) {
    std::string d = p.domain;
    for (char& c : d) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    require(!d.empty() && domains.insert(d).second);
  }
  auto back = parse_profile_bundle(format_profile_bundle(*ps));
  require(back.has_value() && *back == *ps);
  return 0;
}
