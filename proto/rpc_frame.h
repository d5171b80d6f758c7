// CRC32 "full" framing of the middle-proxy RPC stream (protocol.md §8):
// `u32 len | i32 seq | payload | u32 CRC32(len‖seq‖payload)` with
// len = payload + 12, padded with 04000000 words to a multiple of 16 (the
// AES-CBC block) by the sender; readers skip len==4 words. Sequence numbers
// run -2 (RPC_NONCE), -1 (RPC_HANDSHAKE), 0, 1, ... independently per
// direction. Pure; one encoder and one decoder per direction per
// connection; not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "proto/bytes.h"

namespace mtw::proto {

// IEEE 802.3 CRC32 (zlib's crc32), as the middle proxies compute it.
std::uint32_t crc32(ByteSpan data) noexcept;

inline constexpr std::int32_t kRpcFirstSeq = -2;
// len counts itself, seq and the CRC: an empty payload has len 12.
inline constexpr std::size_t kRpcFrameOverhead = 12;
// Default cap on a frame's len field: a 16 MiB client packet (the client-side
// framing cap) plus the PROXY_ANS/PROXY_REQ headers, rounded up.
inline constexpr std::size_t kRpcDefaultMaxFrameLen = 16 * 1024 * 1024 + 4096;

class RpcFrameEncoder {
 public:
  explicit RpcFrameEncoder(std::int32_t first_seq = kRpcFirstSeq) noexcept : seq_(first_seq) {}
  // Appends one frame plus its padding to `out` and advances the sequence
  // number. Errors (nothing appended, seq unchanged): kBadInput if
  // payload.size() % 4 != 0 (padding words could not be told apart from the
  // tail), kTooLarge if len would exceed `max_len`.
  [[nodiscard]] Result<void> encode(ByteSpan payload, Bytes& out,
                                    std::size_t max_len = kRpcDefaultMaxFrameLen);
  std::int32_t next_seq() const noexcept { return seq_; }

 private:
  std::int32_t seq_;
};

// Why a decoder stopped; each maps to an Error (kTooLarge for kTooLarge,
// kBadInput otherwise) whose context names it.
enum class RpcFrameFault {
  kNone,
  kBadLength,  // len < 12 (other than a len==4 padding word) or not a multiple of 4
  kTooLarge,   // len > the decoder's max_len (detected from the first 4 bytes)
  kBadSeq,     // seq differs from the expected one (detected from the first 8 bytes)
  kBadCrc,
};
std::string_view rpc_frame_fault_name(RpcFrameFault f) noexcept;

// Called once per frame; the span is valid only during the call.
using RpcFrameSink = std::function<void(std::int32_t seq, ByteSpan payload)>;

class RpcFrameDecoder {
 public:
  explicit RpcFrameDecoder(std::int32_t first_seq = kRpcFirstSeq,
                           std::size_t max_len = kRpcDefaultMaxFrameLen) noexcept
      : seq_(first_seq), max_len_(max_len) {}

  // Consumes whole frames (and padding words) from `in`, calling `sink` for
  // each, and returns the bytes consumed; a partial frame at the end is left
  // for the caller to keep and present again with more bytes. A hostile
  // length or sequence is rejected as soon as its header bytes are present,
  // before the body arrives. On error, frames before the bad one have been
  // delivered, fault() says why, and every later call fails the same way:
  // the connection is unusable.
  [[nodiscard]] Result<std::size_t> decode(ByteSpan in, const RpcFrameSink& sink);

  std::int32_t next_seq() const noexcept { return seq_; }
  RpcFrameFault fault() const noexcept { return fault_; }

 private:
  tl::unexpected<Error> fail(RpcFrameFault f);

  std::int32_t seq_;
  std::size_t max_len_;
  RpcFrameFault fault_ = RpcFrameFault::kNone;
};

}  // namespace mtw::proto
