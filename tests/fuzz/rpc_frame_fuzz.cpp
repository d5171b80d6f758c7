// Fuzzes the middle-proxy frame decoder (RpcFrameDecoder). Properties:
//  1. Feeding the input in two pieces (split at a fuzzer-chosen point, keeping
//     the unconsumed tail as a reader does) gives the same frames, outcome
//     and fault as one call.
//  2. Reading the input as a list of payloads, encoding them with
//     RpcFrameEncoder and decoding the result yields the same payloads and
//     sequence numbers (random bytes rarely pass the CRC, so this is what
//     reaches the accepting paths).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "proto/rpc_frame.h"

namespace {

using namespace mtw::proto;

struct Copy {
  std::int32_t seq;
  std::vector<std::byte> payload;
  bool operator==(const Copy&) const = default;
};

struct Outcome {
  std::vector<Copy> frames;
  bool ok = true;
  RpcFrameFault fault = RpcFrameFault::kNone;
  std::size_t consumed = 0;
};

bool run(RpcFrameDecoder& d, ByteSpan in, std::vector<Copy>& frames, std::size_t* used) {
  const auto r = d.decode(in, [&](std::int32_t seq, ByteSpan p) {
    frames.push_back({seq, std::vector<std::byte>(p.begin(), p.end())});
  });
  if (!r) {
    if (d.fault() == RpcFrameFault::kNone) std::abort();
    return false;
  }
  if (*r > in.size()) std::abort();
  *used = *r;
  return true;
}

Outcome one_shot(std::int32_t seq, std::size_t max_len, ByteSpan in) {
  RpcFrameDecoder d(seq, max_len);
  Outcome o;
  o.ok = run(d, in, o.frames, &o.consumed);
  o.fault = d.fault();
  return o;
}

Outcome split(std::int32_t seq, std::size_t max_len, ByteSpan in, std::size_t at) {
  RpcFrameDecoder d(seq, max_len);
  Outcome o;
  std::size_t used = 0;
  if (!run(d, in.first(at), o.frames, &used)) {
    o.ok = false;
    o.fault = d.fault();
    return o;
  }
  std::vector<std::byte> pending(in.begin() + static_cast<std::ptrdiff_t>(used), in.end());
  std::size_t used2 = 0;
  o.ok = run(d, pending, o.frames, &used2);
  o.fault = d.fault();
  o.consumed = used + used2;
  return o;
}

void round_trip(std::int32_t seq, ByteSpan in) {
  // Payload list: a length byte (in words) followed by that many words.
  RpcFrameEncoder enc(seq);
  std::vector<Copy> want;
  Bytes wire;
  std::size_t pos = 0;
  while (pos < in.size()) {
    const std::size_t words = std::to_integer<std::size_t>(in[pos++]);
    const std::size_t n = std::min(words * 4, (in.size() - pos) / 4 * 4);
    const ByteSpan p = in.subspan(pos, n);
    pos += n;
    want.push_back({enc.next_seq(), std::vector<std::byte>(p.begin(), p.end())});
    if (!enc.encode(p, wire)) std::abort();
    if (wire.size() % 16 != 0) std::abort();
  }
  RpcFrameDecoder d(seq);
  std::vector<Copy> got;
  std::size_t used = 0;
  if (!run(d, wire, got, &used) || used != wire.size() || got != want) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const std::size_t split_seed = data[0] | (std::size_t{data[1]} << 8);
  // Mode byte: bits 0-1 pick the first expected seq (0, -2, -1), bit 2 a small size cap.
  constexpr std::int32_t kSeqs[4] = {0, kRpcFirstSeq, -1, 0};
  const std::int32_t seq = kSeqs[data[2] & 3];
  const std::size_t max_len = (data[2] & 4) ? 256 : kRpcDefaultMaxFrameLen;
  const ByteSpan in(reinterpret_cast<const std::byte*>(data + 3), size - 3);
  const std::size_t at = split_seed % (in.size() + 1);
  const Outcome a = one_shot(seq, max_len, in);
  const Outcome b = split(seq, max_len, in, at);
  if (a.ok != b.ok || a.frames != b.frames || a.fault != b.fault) std::abort();
  if (a.ok && a.consumed != b.consumed) std::abort();
  round_trip(seq, in);
  return 0;
}
