// TLS record layer of the fake-TLS data phase (protocol.md §5 "Data phase").
#include <algorithm>

#include "base/check.h"
#include "proto/fake_tls.h"

namespace mtw::proto {
namespace {

constexpr std::byte kChangeCipherSpec{0x14};
constexpr std::byte kApplicationData{0x17};

}  // namespace

Result<std::size_t> read_tls_records(ByteSpan in, const RecordSink& sink) {
  std::size_t pos = 0;
  while (pos < in.size()) {
    const std::size_t avail = in.size() - pos;
    const std::byte type = in[pos];
    if (type != kChangeCipherSpec && type != kApplicationData) {
      return base::fail(Errc::kBadInput, "tls: unexpected record type");
    }
    if ((avail > 1 && in[pos + 1] != std::byte{0x03}) ||
        (avail > 2 && in[pos + 2] != std::byte{0x03})) {
      return base::fail(Errc::kBadInput, "tls: record version is not 03 03");
    }
    if (avail < kTlsHeaderSize) break;
    const std::size_t len = load_be16(in.data() + pos + 3);
    if (len > kMaxTlsRecordPayload) return base::fail(Errc::kTooLarge, "tls: record too large");
    if (avail < kTlsHeaderSize + len) break;
    if (type == kApplicationData && len > 0) sink(in.subspan(pos + kTlsHeaderSize, len));
    pos += kTlsHeaderSize + len;
  }
  return pos;
}

void write_tls_header(std::span<std::byte, kTlsHeaderSize> out, std::size_t n) noexcept {
  MTW_CHECK(n <= kMaxTlsRecordPayload);
  out[0] = kApplicationData;
  out[1] = std::byte{0x03};
  out[2] = std::byte{0x03};
  store_be16(out.data() + 3, static_cast<std::uint16_t>(n));
}

void write_tls_records(ByteSpan payload, Bytes& out, std::size_t max_payload) {
  MTW_CHECK(max_payload >= 1 && max_payload <= kMaxTlsRecordPayload);
  const std::size_t records = (payload.size() + max_payload - 1) / max_payload;
  out.reserve(out.size() + payload.size() + records * kTlsHeaderSize);
  for (std::size_t pos = 0; pos < payload.size(); pos += max_payload) {
    const std::size_t n = std::min(max_payload, payload.size() - pos);
    const std::size_t at = out.size();
    out.resize(at + kTlsHeaderSize);
    write_tls_header(std::span<std::byte, kTlsHeaderSize>(out.data() + at, kTlsHeaderSize), n);
    out.insert(out.end(), payload.begin() + pos, payload.begin() + pos + n);
  }
}

}  // namespace mtw::proto
