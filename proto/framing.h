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
  ByteSpan payload;                  // kPacket: the MTProto packet (padding removed)
  bool quick_ack_requested = false;  // kPacket to the server: bit set in the length
  std::uint32_t quick_ack = 0;       // kQuickAck: the 32-bit token, top bit set
  std::int32_t error_code = 0;       // kTransportError: e.g. -404, -429, -444
};

// Appends one encoded packet. Every transport requires a non-empty payload
// with payload.size() % 4 == 0 (MTProto packets are word-aligned, and padded
// decoders cut at len & ~3). Padded adds random padding counted in the length:
// 0..15 bytes toward the server (as TD does), 0..3 toward the client (as the
// official server does; clients may not tolerate more). `rnd` is used for
// kPadded only; nullptr means system_random(). A quick-ack request is only
// valid toward the server. Errors: kBadInput (empty, alignment, quick ack
// toward the client), kTooLarge (over kMaxFramePayload).
[[nodiscard]] Result<void> encode_packet(Transport t, ByteSpan payload, bool quick_ack_request,
                                         Bytes& out, RandomSource* rnd = nullptr,
                                         Direction d = Direction::kToServer);
// Server->client extras. A quick ack is 4 raw bytes (no length prefix), the
// top bit forced on; big-endian for abridged, little-endian otherwise.
void encode_quick_ack(Transport t, std::uint32_t token, Bytes& out);
// A transport error is a framed 4-byte packet holding the negative code
// (TD reads any 4-byte packet as one). Padded gets no padding.
void encode_transport_error(Transport t, std::int32_t code, Bytes& out);

// Decodes whole frames from `in`, calling `sink` for each, and returns how
// many bytes were consumed; a partial frame at the end is left for the next
// call (the caller keeps the tail). The span inside a Frame is valid only
// during the sink call. Toward the client, a word with the top bit set where
// a length is expected is a quick ack, and a 4-byte packet is a transport
// error. Padded payloads are cut to len & ~3 (what the official server
// forwards), so up to 12 padding bytes may remain after a client's packet.
// Errors: kBadInput (zero length, abridged 0x7f with L < 0x7f, intermediate
// length not a multiple of 4), kTooLarge (over kMaxFramePayload). Frames
// before the bad one have already been delivered; the stream is unusable.
using FrameSink = std::function<void(const Frame&)>;
[[nodiscard]] Result<std::size_t> decode_frames(Transport t, Direction d, ByteSpan in,
                                                const FrameSink& sink);

}  // namespace mtw::proto
