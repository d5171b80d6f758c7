// Fuzzes parse_server_flight (bytes a mask site sent): accepted flights stay
// within the input and the caps, and merging one into a profile gives a
// profile whose text form parses back to it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "proto/tls_profile.h"

namespace {

using namespace mtw::proto;

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteSpan in(reinterpret_cast<const std::byte*>(data), size);
  auto f = parse_server_flight(in);
  if (!f) return 0;
  require(f->consumed <= size && f->consumed >= 5);
  require(f->encrypted_records.size() <= kMaxProfileRecords);
  require(f->extensions.size() <= kMaxProfileExtensions);
  require(f->session_id.size() <= 32);
  // Re-reading just the consumed prefix gives the same flight.
  auto again = parse_server_flight(in.first(f->consumed));
  require(again.has_value() && again->encrypted_records == f->encrypted_records);

  const FlightSample sample{*f, f->session_id, 1};
  auto p = profile_from_flights({&sample, 1}, "mask.test", 1'800'000'000);
  if (!p) return 0;
  auto back = parse_profile(format_profile(*p));
  require(back.has_value() && *back == *p);
  return 0;
}
