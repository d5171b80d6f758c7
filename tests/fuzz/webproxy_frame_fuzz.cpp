// Fuzzes the WEB proxy frame decoders. The first two input bytes pick a split
// point; the rest is one carrier message. Properties:
//  - decode_web_batch accepts exactly when decode_web_frames consumes the
//    whole message with no error and 1..4096 frames, and both see the same
//    frames (and a batch error delivers none);
//  - feeding the bytes in two pieces (keeping the unconsumed tail, as a
//    reader does) yields the same frames as one call, or the same error;
//  - every decoded frame re-encodes to exactly its input bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "proto/webproxy_frame.h"

namespace {

using namespace mtw::proto;

struct Copy {
  WebFrameType type;
  std::uint32_t id;
  std::vector<std::byte> payload;
  bool operator==(const Copy&) const = default;
};

WebFrameSink into(std::vector<Copy>& out) {
  return [&out](const WebFrame& f) {
    out.push_back(
        {f.type, f.stream_id, std::vector<std::byte>(f.payload.begin(), f.payload.end())});
  };
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t split_seed = data[0] | (std::size_t{data[1]} << 8);
  const ByteSpan in(reinterpret_cast<const std::byte*>(data + 2), size - 2);

  std::vector<Copy> batch;
  const WebResult<std::size_t> b = decode_web_batch(in, into(batch));
  std::vector<Copy> stream;
  const WebResult<std::size_t> s = decode_web_frames(in, into(stream));
  if (!b && !batch.empty()) std::abort();
  if (b) {
    if (!s || *s != in.size() || stream != batch || *b != batch.size()) std::abort();
    if (batch.empty() || batch.size() > kMaxWebBatchFrames) std::abort();
  } else if (s && *s == in.size() && !stream.empty() && stream.size() <= kMaxWebBatchFrames) {
    std::abort();  // the stream decoder found a valid batch the batch decoder refused
  }

  // Two pieces.
  const std::size_t at = split_seed % (in.size() + 1);
  std::vector<Copy> pieces;
  WebResult<std::size_t> p1 = decode_web_frames(in.first(at), into(pieces));
  WebResult<std::size_t> p2 = 0;
  if (p1) {
    std::vector<std::byte> pending(in.begin() + static_cast<std::ptrdiff_t>(*p1), in.end());
    p2 = decode_web_frames(pending, into(pieces));
    if (p2 && s && *p1 + *p2 != *s) std::abort();
  }
  const bool pieces_ok = p1 && p2;
  if (pieces_ok != s.has_value()) std::abort();
  if (s && pieces != stream) std::abort();
  if (!s && (p1 ? p2.error() : p1.error()) != s.error()) std::abort();

  // Re-encoding reproduces the consumed bytes exactly.
  if (s) {
    Bytes again;
    for (const Copy& c : stream) {
      if (!encode_web_frame(c.type, c.id, c.payload, again)) std::abort();
    }
    if (again.size() != *s || !std::equal(again.begin(), again.end(), in.begin())) std::abort();
  }
  return 0;
}
