#include "proto/webproxy_frame.h"

#include <vector>

#include "base/check.h"

namespace mtw::proto {
namespace {

bool known_type(std::uint8_t t) noexcept {
  switch (static_cast<WebFrameType>(t)) {
    case WebFrameType::kOpen:
    case WebFrameType::kData:
    case WebFrameType::kClose:
    case WebFrameType::kWindow:
    case WebFrameType::kPing:
    case WebFrameType::kPong:
    case WebFrameType::kHello:
    case WebFrameType::kWelcome:
    case WebFrameType::kAuthChallenge:
    case WebFrameType::kAuthResponse:
    case WebFrameType::kBye:
      return true;
  }
  return false;
}

// The per-type rules shared by the encoder and the decoder. The order of the
// checks fixes which reason wins when several apply (documented in docs/proto.md).
WebResult<void> check_shape(std::uint8_t raw_type, std::uint32_t id, std::size_t len) {
  if (!known_type(raw_type)) return tl::unexpected(WebReason::kUnknownType);
  if (len > kMaxWebFramePayload) return tl::unexpected(WebReason::kOversized);
  if (id > kMaxWebStreamId) return tl::unexpected(WebReason::kBadStreamId);
  const auto type = static_cast<WebFrameType>(raw_type);
  bool stream_frame = false;
  bool len_ok = false;
  switch (type) {
    case WebFrameType::kOpen:
    case WebFrameType::kClose:
      stream_frame = true;
      len_ok = len == 0;
      break;
    case WebFrameType::kData:
      stream_frame = true;
      len_ok = len > 0;
      break;
    case WebFrameType::kWindow:
      stream_frame = true;
      len_ok = len == 4;
      break;
    case WebFrameType::kPing:
    case WebFrameType::kPong:
    case WebFrameType::kBye:
      len_ok = len <= kMaxWebControlPayload;
      break;
    case WebFrameType::kHello:
      len_ok = len == 1;
      break;
    case WebFrameType::kWelcome:
      len_ok = len == 0;
      break;
    case WebFrameType::kAuthChallenge:
    case WebFrameType::kAuthResponse:
      return tl::unexpected(WebReason::kReservedType);
  }
  if (stream_frame != (id != 0)) return tl::unexpected(WebReason::kBadStreamId);
  if (!len_ok) return tl::unexpected(WebReason::kBadLength);
  return {};
}

void append_frame(WebFrameType type, std::uint32_t id, ByteSpan payload, Bytes& out) {
  const std::size_t at = out.size();
  out.resize(at + kWebFrameHeader);
  out[at] = static_cast<std::byte>(type);
  store_be24(out.data() + at + 1, id);
  store_be32(out.data() + at + 4, static_cast<std::uint32_t>(payload.size()));
  out.insert(out.end(), payload.begin(), payload.end());
}

}  // namespace

std::string_view web_frame_type_name(WebFrameType t) noexcept {
  switch (t) {
    case WebFrameType::kOpen:
      return "OPEN";
    case WebFrameType::kData:
      return "DATA";
    case WebFrameType::kClose:
      return "CLOSE";
    case WebFrameType::kWindow:
      return "WINDOW";
    case WebFrameType::kPing:
      return "PING";
    case WebFrameType::kPong:
      return "PONG";
    case WebFrameType::kHello:
      return "HELLO";
    case WebFrameType::kWelcome:
      return "WELCOME";
    case WebFrameType::kAuthChallenge:
      return "AUTH_CHAL";
    case WebFrameType::kAuthResponse:
      return "AUTH_RESP";
    case WebFrameType::kBye:
      return "BYE";
  }
  return "UNKNOWN";
}

std::string_view web_reason_name(WebReason r) noexcept {
  switch (r) {
    case WebReason::kNone:
      return "none";
    case WebReason::kUnknownType:
      return "unknown_type";
    case WebReason::kReservedType:
      return "reserved_type";
    case WebReason::kOversized:
      return "oversized";
    case WebReason::kBadLength:
      return "bad_length";
    case WebReason::kBadStreamId:
      return "bad_stream_id";
    case WebReason::kTruncated:
      return "truncated";
    case WebReason::kEmptyBatch:
      return "empty_batch";
    case WebReason::kTooManyFrames:
      return "too_many_frames";
    case WebReason::kBadHello:
      return "bad_hello";
    case WebReason::kUnexpectedFrame:
      return "unexpected_frame";
    case WebReason::kDuplicateOpen:
      return "duplicate_open";
    case WebReason::kUnknownStream:
      return "unknown_stream";
    case WebReason::kWindowOverrun:
      return "window_overrun";
    case WebReason::kZeroWindow:
      return "zero_window";
    case WebReason::kWindowOverflow:
      return "window_overflow";
    case WebReason::kBadPong:
      return "bad_pong";
    case WebReason::kStreamLimit:
      return "stream_limit";
    case WebReason::kBufferLimit:
      return "buffer_limit";
    case WebReason::kTextMessage:
      return "text_message";
    case WebReason::kBadSequence:
      return "bad_sequence";
    case WebReason::kBadCursor:
      return "bad_cursor";
    case WebReason::kBadToken:
      return "bad_token";
    case WebReason::kExpiredToken:
      return "expired_token";
    case WebReason::kReplayedToken:
      return "replayed_token";
    case WebReason::kPeerClose:
      return "peer_close";
    case WebReason::kLocalClose:
      return "local_close";
  }
  return "unknown";
}

WebResult<void> encode_web_frame(WebFrameType type, std::uint32_t stream_id, ByteSpan payload,
                                 Bytes& out) {
  if (auto r = check_shape(static_cast<std::uint8_t>(type), stream_id, payload.size()); !r) {
    return r;
  }
  append_frame(type, stream_id, payload, out);
  return {};
}

void encode_web_window(std::uint32_t stream_id, std::uint32_t credit, Bytes& out) {
  MTW_CHECK(stream_id != 0 && stream_id <= kMaxWebStreamId);
  std::byte v[4];
  store_be32(v, credit);
  append_frame(WebFrameType::kWindow, stream_id, v, out);
}

void encode_web_close(std::uint32_t stream_id, Bytes& out) {
  MTW_CHECK(stream_id != 0 && stream_id <= kMaxWebStreamId);
  append_frame(WebFrameType::kClose, stream_id, {}, out);
}

void encode_web_welcome(Bytes& out) { append_frame(WebFrameType::kWelcome, 0, {}, out); }

WebResult<void> check_web_frame(const WebFrame& frame) {
  return check_shape(static_cast<std::uint8_t>(frame.type), frame.stream_id, frame.payload.size());
}

WebResult<std::size_t> check_web_frame_header(ByteSpan header) {
  MTW_CHECK(header.size() >= kWebFrameHeader);
  const std::uint8_t type = std::to_integer<std::uint8_t>(header[0]);
  const std::uint32_t id = load_be24(header.data() + 1);
  const std::uint32_t len = load_be32(header.data() + 4);
  if (auto r = check_shape(type, id, len); !r) return tl::unexpected(r.error());
  return kWebFrameHeader + len;
}

WebResult<std::size_t> decode_web_frames(ByteSpan in, const WebFrameSink& sink) {
  std::size_t pos = 0;
  while (in.size() - pos >= kWebFrameHeader) {
    const ByteSpan rest = in.subspan(pos);
    WebResult<std::size_t> total = check_web_frame_header(rest);
    if (!total) return tl::unexpected(total.error());
    if (rest.size() < *total) break;
    sink(WebFrame{static_cast<WebFrameType>(rest[0]), load_be24(rest.data() + 1),
                  rest.subspan(kWebFrameHeader, *total - kWebFrameHeader)});
    pos += *total;
  }
  return pos;
}

WebResult<std::size_t> decode_web_batch(ByteSpan message, const WebFrameSink& sink) {
  if (message.empty()) return tl::unexpected(WebReason::kEmptyBatch);
  // First pass validates everything, so a bad batch has no partial effect.
  std::size_t count = 0;
  std::size_t pos = 0;
  while (pos < message.size()) {
    const ByteSpan rest = message.subspan(pos);
    if (rest.size() < kWebFrameHeader) return tl::unexpected(WebReason::kTruncated);
    WebResult<std::size_t> total = check_web_frame_header(rest);
    if (!total) return tl::unexpected(total.error());
    if (rest.size() < *total) return tl::unexpected(WebReason::kTruncated);
    if (++count > kMaxWebBatchFrames) return tl::unexpected(WebReason::kTooManyFrames);
    pos += *total;
  }
  WebResult<std::size_t> used = decode_web_frames(message, sink);
  MTW_CHECK(used && *used == message.size());
  return count;
}

}  // namespace mtw::proto
