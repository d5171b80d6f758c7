// MTProto transport framing inside the (decrypted) obfuscated2 stream:
// abridged, intermediate, padded intermediate, quick acks and transport
// errors. See ../shared/docs/protocol.md §4. Pure; decoders hold no state
// beyond what the caller keeps (the unconsumed tail), so they are reentrant.
#pragma once

#include <cstdint>
#include <functional>

#include "proto/bytes.h"
#include "proto/obfs2.h"
#include "proto/random.h"

namespace mtw::proto {

enum class Transport { kAbridged, kIntermediate, kPadded };
Transport transport_for(ProtoTag tag) noexcept;

// Which way the bytes flow; quick acks and transport errors travel only
// server->client and look different from frames.
enum class Direction { kToServer, kToClient };

// Hard cap on a frame's payload (the official server uses 16 MiB too).
inline constexpr std::size_t kMaxFramePayload = 16 * 1024 * 1024;

struct Frame {
  enum class Kind { kPacket, kQuickAck, kTransportError };
  Kind kind = Kind::kPacket;
  ByteSpan payload;            // kPacket: the MTProto packet (padding removed)
  bool quick_ack_requested = false;  // kPacket to the server: bit set in the length
  std::uint32_t quick_ack = 0;       // kQuickAck: the 32-bit token, top bit set
  std::int32_t error_code = 0;       // kTransportError: e.g. -404, -429, -444
};

// Appends one encoded packet. Abridged requires payload.size() % 4 == 0;
// padded adds 0..15 random bytes (`rnd` needed for kPadded only).
// Errors: kBadInput (alignment), kTooLarge (over kMaxFramePayload).
[[nodiscard]] Result<void> encode_packet(Transport t, ByteSpan payload, bool quick_ack_request,
                                         Bytes& out, RandomSource* rnd = nullptr);
// Server->client extras.
void encode_quick_ack(Transport t, std::uint32_t token, Bytes& out);
void encode_transport_error(std::int32_t code, Bytes& out);

// Decodes whole frames from `in`, calling `sink` for each, and returns how
// many bytes were consumed; a partial frame at the end is left for the next
// call (the caller keeps the tail). The span inside a Frame is valid only
// during the sink call. Errors: kBadInput (malformed length, e.g. abridged
// 0x7f with L < 0x7f, intermediate length not a multiple of 4 where required),
// kTooLarge (over kMaxFramePayload). After an error the stream is unusable.
using FrameSink = std::function<void(const Frame&)>;
[[nodiscard]] Result<std::size_t> decode_frames(Transport t, Direction d, ByteSpan in,
                                                const FrameSink& sink);

}  // namespace mtw::proto
