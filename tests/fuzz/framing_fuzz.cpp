// Fuzzes decode_frames for every transport and direction. Property: feeding
// the input in two pieces (split at a fuzzer-chosen point, keeping the
// unconsumed tail like the worker) yields the same frames and outcome as
// decoding it in one call.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "proto/framing.h"

namespace {

using namespace mtw::proto;

struct Copy {
  Frame::Kind kind;
  std::vector<std::byte> payload;
  bool qa;
  std::uint32_t ack;
  std::int32_t err;
  bool operator==(const Copy&) const = default;
};

struct Outcome {
  std::vector<Copy> frames;
  bool ok = true;
  std::size_t consumed = 0;
};

// Returns false on error; appends frames; sets *used on success.
bool run(Transport t, Direction d, ByteSpan in, std::vector<Copy>& frames, std::size_t* used) {
  const auto r = decode_frames(t, d, in, [&](const Frame& f) {
    // Touch every payload byte so ASan sees any out-of-bounds span.
    frames.push_back({f.kind, std::vector<std::byte>(f.payload.begin(), f.payload.end()),
                      f.quick_ack_requested, f.quick_ack, f.error_code});
  });
  if (!r) return false;
  if (*r > in.size()) std::abort();
  *used = *r;
  return true;
}

Outcome one_shot(Transport t, Direction d, ByteSpan in) {
  Outcome o;
  o.ok = run(t, d, in, o.frames, &o.consumed);
  return o;
}

Outcome split(Transport t, Direction d, ByteSpan in, std::size_t at) {
  Outcome o;
  std::size_t used = 0;
  if (!run(t, d, in.first(at), o.frames, &used)) {
    o.ok = false;
    return o;
  }
  // Keep the unconsumed tail and append the second piece, as a reader would.
  std::vector<std::byte> pending(in.begin() + static_cast<std::ptrdiff_t>(used), in.end());
  std::size_t used2 = 0;
  o.ok = run(t, d, pending, o.frames, &used2);
  o.consumed = used + used2;
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t split_seed = data[0] | (std::size_t{data[1]} << 8);
  const ByteSpan in(reinterpret_cast<const std::byte*>(data + 2), size - 2);
  const std::size_t at = split_seed % (in.size() + 1);
  for (Transport t : {Transport::kAbridged, Transport::kIntermediate, Transport::kPadded}) {
    for (Direction d : {Direction::kToServer, Direction::kToClient}) {
      const Outcome a = one_shot(t, d, in);
      const Outcome b = split(t, d, in, at);
      if (a.ok != b.ok || a.frames != b.frames) std::abort();
      if (a.ok && a.consumed != b.consumed) std::abort();
    }
  }
  return 0;
}
