// WEB proxy frames (../shared/docs/webproxy.md §1.5): the multiplexing layer
// between Telegram and the relay, carried unchanged by every carrier.
//   type:u8 | stream_id:u24 | len:u32 | payload      (big-endian)
// Encoders and strict decoders, plus WebReason, the one list of reasons a
// session or stream is closed for (codec, session and carriers share it so
// that metrics have one vocabulary). Pure, reentrant; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include <tl/expected.hpp>

#include "proto/bytes.h"

namespace mtw::proto {

enum class WebFrameType : std::uint8_t {
  kOpen = 0x01,
  kData = 0x02,
  kClose = 0x03,
  kWindow = 0x04,
  kPing = 0x05,
  kPong = 0x06,
  kHello = 0x10,
  kWelcome = 0x11,
  kAuthChallenge = 0x12,  // reserved by the contract; refused
  kAuthResponse = 0x13,   // reserved by the contract; refused
  kBye = 0x1f,
};
std::string_view web_frame_type_name(WebFrameType t) noexcept;

inline constexpr std::size_t kWebFrameHeader = 8;
inline constexpr std::size_t kWebWindowFrame = kWebFrameHeader + 4;
inline constexpr std::uint32_t kMaxWebStreamId = 0xFFFFFF;
// The contract's payload cap, for any frame type.
inline constexpr std::size_t kMaxWebFramePayload = 1024 * 1024;
// PING/PONG echo and BYE payloads (the app answers PINGs of at most 64).
inline constexpr std::size_t kMaxWebControlPayload = 64;
// Frames in one carrier message (a batch).
inline constexpr std::size_t kMaxWebBatchFrames = 4096;
// The only protocol version: HELLO's payload byte.
inline constexpr std::byte kWebProtocolVersion{0x01};

// Why a session (or one stream) ended. Names are stable metric labels.
enum class WebReason : std::uint8_t {
  kNone,
  // Codec: the bytes are not a valid frame or batch.
  kUnknownType,    // a type byte outside the table
  kReservedType,   // AUTH_CHAL / AUTH_RESP
  kOversized,      // len over kMaxWebFramePayload
  kBadLength,      // len wrong for the type (OPEN/CLOSE/WELCOME non-empty, WINDOW != 4, ...)
  kBadStreamId,    // stream frame on id 0, or control frame on another id
  kTruncated,      // a message ends inside a frame
  kEmptyBatch,     // a carrier message with no frame
  kTooManyFrames,  // over kMaxWebBatchFrames in one message
  // Session: well-formed frames in the wrong place.
  kBadHello,         // first frame not HELLO(0, 01), or a second HELLO
  kUnexpectedFrame,  // a frame the app never sends (WELCOME, AUTH_CHAL, AUTH_RESP)
  kDuplicateOpen,    // OPEN for an id that is open or was closed
  kUnknownStream,    // DATA/WINDOW for an id never opened (stream-level: answered with CLOSE)
  kWindowOverrun,    // DATA beyond the credit the relay granted
  kZeroWindow,       // WINDOW of 0
  kWindowOverflow,   // WINDOW raising the credit over kMaxWebCredit
  kBadPong,          // PONG that echoes no PING in flight
  kStreamLimit,      // OPEN over the per-session or per-user stream limit (stream-level)
  kBufferLimit,      // outbound queue full when a frame had to be queued
  // Carriers and tokens.
  kTextMessage,  // a WebSocket text message
  kBadSequence,  // uplink seq neither the next nor a byte-identical retry
  kBadCursor,    // downlink cursor neither the next nor the last one
  kBadToken,     // malformed or forged session token
  kExpiredToken,
  kReplayedToken,  // a single-use token presented again
  // Orderly ends.
  kPeerClose,   // the app closed the stream, or said BYE
  kLocalClose,  // the relay closed it (backend gone, shutdown)
};
std::string_view web_reason_name(WebReason r) noexcept;
inline constexpr std::size_t kWebReasonCount = static_cast<std::size_t>(WebReason::kLocalClose) + 1;

template <class T>
using WebResult = tl::expected<T, WebReason>;

struct WebFrame {
  WebFrameType type = WebFrameType::kData;
  std::uint32_t stream_id = 0;
  ByteSpan payload;  // points into the decoded message; valid as long as it is
};

// Appends one frame. Validates exactly what the decoder validates, so every
// encoded frame decodes: the stream id range and the per-type rules below.
//   OPEN, CLOSE: id != 0, empty.  DATA: id != 0, 1..kMaxWebFramePayload.
//   WINDOW: id != 0, 4 bytes.     PING, PONG, BYE: id 0, <= 64 bytes.
//   HELLO: id 0, 1 byte.          WELCOME: id 0, empty.
// Errors: kBadStreamId, kBadLength, kOversized, kReservedType.
[[nodiscard]] WebResult<void> encode_web_frame(WebFrameType type, std::uint32_t stream_id,
                                               ByteSpan payload, Bytes& out);
// Shorthands for frames whose shape is fixed; they cannot fail for a valid id.
void encode_web_window(std::uint32_t stream_id, std::uint32_t credit, Bytes& out);
void encode_web_close(std::uint32_t stream_id, Bytes& out);
void encode_web_welcome(Bytes& out);

// The same rules for a frame built in memory (not decoded from bytes).
[[nodiscard]] WebResult<void> check_web_frame(const WebFrame& frame);

// Reads one frame's header and validates type, length and id before the
// payload arrives, so a reader can refuse a frame as soon as it sees 8 bytes
// and never buffers more than kWebFrameHeader + kMaxWebFramePayload.
// Returns the total frame size (header + payload). Needs in.size() >= 8.
[[nodiscard]] WebResult<std::size_t> check_web_frame_header(ByteSpan header);

// Decodes whole frames from a byte stream, calling `sink` for each; returns
// how many bytes were consumed. A partial frame at the end is left for the
// next call (its header is validated as soon as it is complete). Frames
// before a bad one have been delivered; after an error the stream is unusable.
using WebFrameSink = std::function<void(const WebFrame&)>;
[[nodiscard]] WebResult<std::size_t> decode_web_frames(ByteSpan in, const WebFrameSink& sink);

// Decodes one carrier message, which must hold one or more complete frames
// and at most kMaxWebBatchFrames. Validates the whole message before calling
// `sink` at all, so a bad batch delivers nothing. Returns the frame count.
// Errors: any of decode_web_frames's, kEmptyBatch, kTruncated, kTooManyFrames.
[[nodiscard]] WebResult<std::size_t> decode_web_batch(ByteSpan message, const WebFrameSink& sink);

}  // namespace mtw::proto
