// CRC32 full framing of the middle-proxy stream (protocol.md §8).
#include "proto/rpc_frame.h"

#include <array>
#include <string>

namespace mtw::proto {
namespace {

constexpr std::uint32_t kPaddingWord = 4;  // a len==4 "frame" is a padding word
constexpr std::size_t kBlock = 16;         // AES-CBC block: frames are padded to it

constexpr std::array<std::uint32_t, 256> make_crc_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<std::uint32_t, 256> kCrcTable = make_crc_table();

std::uint32_t crc32_update(std::uint32_t crc, ByteSpan data) noexcept {
  for (std::byte b : data)
    crc = kCrcTable[(crc ^ std::to_integer<std::uint32_t>(b)) & 0xff] ^ (crc >> 8);
  return crc;
}

// Sequence numbers wrap like the official server's int counter, without UB.
std::int32_t next(std::int32_t seq) noexcept {
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(seq) + 1u);
}

void append_le32(Bytes& out, std::uint32_t v) {
  std::byte b[4];
  store_le32(b, v);
  out.insert(out.end(), b, b + 4);
}

}  // namespace

std::uint32_t crc32(ByteSpan data) noexcept { return ~crc32_update(0xffffffffu, data); }

Result<void> RpcFrameEncoder::encode(ByteSpan payload, Bytes& out, std::size_t max_len) {
  if (payload.size() % 4 != 0) {
    return base::fail(Errc::kBadInput, "rpc frame: payload length not a multiple of 4");
  }
  const std::size_t len = payload.size() + kRpcFrameOverhead;
  if (len > max_len || len > 0x7fffffffu) {
    return base::fail(Errc::kTooLarge, "rpc frame: payload over the frame size limit");
  }
  const std::size_t start = out.size();
  append_le32(out, static_cast<std::uint32_t>(len));
  append_le32(out, static_cast<std::uint32_t>(seq_));
  out.insert(out.end(), payload.begin(), payload.end());
  append_le32(out, crc32(ByteSpan(out).subspan(start)));
  for (std::size_t n = len; n % kBlock != 0; n += 4) append_le32(out, kPaddingWord);
  seq_ = next(seq_);
  return {};
}

std::string_view rpc_frame_fault_name(RpcFrameFault f) noexcept {
  switch (f) {
    case RpcFrameFault::kNone:
      return "none";
    case RpcFrameFault::kBadLength:
      return "bad_length";
    case RpcFrameFault::kTooLarge:
      return "too_large";
    case RpcFrameFault::kBadSeq:
      return "bad_seq";
    case RpcFrameFault::kBadCrc:
      return "bad_crc";
  }
  return "unknown";
}

tl::unexpected<Error> RpcFrameDecoder::fail(RpcFrameFault f) {
  fault_ = f;
  return base::fail(f == RpcFrameFault::kTooLarge ? Errc::kTooLarge : Errc::kBadInput,
                    "rpc frame: " + std::string(rpc_frame_fault_name(f)));
}

Result<std::size_t> RpcFrameDecoder::decode(ByteSpan in, const RpcFrameSink& sink) {
  if (fault_ != RpcFrameFault::kNone) return fail(fault_);
  std::size_t pos = 0;
  while (in.size() - pos >= 4) {
    const std::byte* p = in.data() + pos;
    const std::uint32_t len = load_le32(p);
    if (len == kPaddingWord) {
      pos += 4;
      continue;
    }
    if (len < kRpcFrameOverhead || len % 4 != 0) return fail(RpcFrameFault::kBadLength);
    if (len > max_len_) return fail(RpcFrameFault::kTooLarge);
    if (in.size() - pos < 8) break;
    const auto seq = static_cast<std::int32_t>(load_le32(p + 4));
    if (seq != seq_) return fail(RpcFrameFault::kBadSeq);
    if (in.size() - pos < len) break;
    const ByteSpan frame = in.subspan(pos, len);
    if (crc32(frame.first(len - 4)) != load_le32(p + len - 4)) return fail(RpcFrameFault::kBadCrc);
    seq_ = next(seq_);
    sink(seq, frame.subspan(8, len - kRpcFrameOverhead));
    pos += len;
  }
  return pos;
}

}  // namespace mtw::proto
