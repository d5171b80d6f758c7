// Fuzzes ipc::control::decode. The whole input is one datagram (the seed
// corpus holds raw wire messages), decoded with 0, 1 and 2 attached fds.
// Properties:
//  - errors are kBadInput or kTooLarge only;
//  - at most one fd count decodes: 1 for the types that carry an fd (handoff,
//    gate-table, gate-handoff, gate-mask, lane, gate-lane), 0 for everything else,
//    and the decoded type matches the header's type byte;
//  - round trip: encode(decode(x)) succeeds, decodes to an equal message and
//    is a fixed point of encode∘decode; it equals x byte for byte unless x is
//    a report whose counter count differs from kCounterCount.
// ipc/control_protocol.cpp is compiled into this target (see CMakeLists.txt).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <variant>

#include "ipc/control_protocol.h"

namespace {

using namespace mtw::ipc::control;
using mtw::base::Errc;
using mtw::ipc::kCounterCount;

void check_round_trip(ByteSpan in, const Message& m, std::size_t fds) {
  if (in.size() < kHeaderSize ||
      static_cast<std::uint8_t>(type_of(m)) != std::to_integer<std::uint8_t>(in[5])) {
    std::abort();
  }
  const auto enc = encode(m);
  if (!enc) std::abort();
  if (enc->size() > kMaxMessageSize) std::abort();
  const auto again = decode(*enc, fds);
  if (!again || *again != m) std::abort();
  const auto enc2 = encode(*again);
  if (!enc2 || *enc2 != *enc) std::abort();

  bool canonical = true;
  if (std::holds_alternative<Report>(m)) {
    // Report body: u64 seq, u16 count, ...; another count re-encodes differently.
    const std::size_t count = std::to_integer<std::size_t>(in[kHeaderSize + 8]) |
                              (std::to_integer<std::size_t>(in[kHeaderSize + 9]) << 8);
    canonical = count == kCounterCount;
  }
  if (canonical && !std::equal(in.begin(), in.end(), enc->begin(), enc->end())) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteSpan in(reinterpret_cast<const std::byte*>(data), size);
  int decoded = 0;
  for (std::size_t fds : {std::size_t{0}, std::size_t{1}, std::size_t{2}}) {
    const auto m = decode(in, fds);
    if (!m) {
      if (m.error().code != Errc::kBadInput && m.error().code != Errc::kTooLarge) std::abort();
      continue;
    }
    ++decoded;
    if (fds != (carries_fd(type_of(*m)) ? 1u : 0u)) std::abort();
    check_round_trip(in, *m, fds);
  }
  if (decoded > 1) std::abort();
  return 0;
}
