// Fuzzes read_tls_records: reading in two pieces (split at a fuzzer-chosen
// point, the partial tail carried over) must deliver the same payloads and
// the same verdict as reading everything at once. Also checks the writer
// round trip. Input: u16 split point, u16 writer cap, then the stream.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "proto/fake_tls.h"

namespace {

using namespace mtw::proto;

void require(bool ok) {
  if (!ok) std::abort();
}

struct Outcome {
  Bytes payload;
  std::size_t consumed = 0;
  std::optional<Errc> error;
};

Outcome one_shot(ByteSpan in) {
  Outcome o;
  auto r = read_tls_records(
      in, [&](ByteSpan p) { o.payload.insert(o.payload.end(), p.begin(), p.end()); });
  if (r) {
    o.consumed = *r;
  } else {
    o.error = r.error().code;
  }
  return o;
}

Outcome two_steps(ByteSpan in, std::size_t split) {
  Outcome first = one_shot(in.first(split));
  if (first.error) return first;
  Bytes rest(in.begin() + first.consumed, in.end());
  Outcome second = one_shot(rest);
  first.payload.insert(first.payload.end(), second.payload.begin(), second.payload.end());
  first.consumed += second.consumed;
  first.error = second.error;
  return first;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  const std::size_t split_raw = (std::size_t{data[0]} << 8) | data[1];
  const std::size_t cap = 1 + (((std::size_t{data[2]} << 8) | data[3]) % kMaxTlsRecordPayload);
  const ByteSpan in(reinterpret_cast<const std::byte*>(data + 4), size - 4);
  const std::size_t split = in.empty() ? 0 : split_raw % (in.size() + 1);

  const Outcome whole = one_shot(in);
  const Outcome split_read = two_steps(in, split);
  require(whole.error == split_read.error);
  require(whole.payload == split_read.payload);
  if (!whole.error) {
    require(whole.consumed == split_read.consumed && whole.consumed <= in.size());
  }

  Bytes wire;
  write_tls_records(in, wire, cap);
  const Outcome back = one_shot(wire);
  require(!back.error && back.consumed == wire.size());
  require(back.payload == Bytes(in.begin(), in.end()));
  return 0;
}
