// MTProto transport framing (protocol.md §4); wire layouts follow the
// official server's parser (net-tcp-rpc-ext-server.c) and TD's transports.
#include "proto/framing.h"

namespace mtw::proto {
namespace {

constexpr std::uint32_t kQuickAckBit = 0x80000000u;
constexpr std::uint8_t kAbridgedQuickAckBit = 0x80;
constexpr std::uint8_t kAbridgedLongMarker = 0x7f;

void append_le32(Bytes& out, std::uint32_t v) {
  std::byte b[4];
  store_le32(b, v);
  out.insert(out.end(), b, b + 4);
}

void append_be32(Bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(std::byte((v >> shift) & 0xff));
}

void append_abridged_header(Bytes& out, std::size_t words, bool quick_ack) {
  const std::uint8_t qa = quick_ack ? kAbridgedQuickAckBit : 0;
  if (words < kAbridgedLongMarker) {
    out.push_back(std::byte(static_cast<std::uint8_t>(words) | qa));
    return;
  }
  out.push_back(std::byte(kAbridgedLongMarker | qa));
  for (int i = 0; i < 3; ++i) out.push_back(std::byte((words >> (8 * i)) & 0xff));
}

void append_payload(Bytes& out, ByteSpan payload) {
  out.insert(out.end(), payload.begin(), payload.end());
}

// What a decoded header says.
struct Header {
  enum class Kind { kNeedMore, kQuickAck, kPacket } kind = Kind::kNeedMore;
  std::size_t header_size = 0;
  std::size_t length = 0;  // bytes after the header
  bool quick_ack = false;
  std::uint32_t token = 0;
};

Result<Header> read_abridged(ByteSpan in, Direction d) {
  Header h;
  if (in.empty()) return h;
  auto first = std::to_integer<std::uint8_t>(in[0]);
  if (first & kAbridgedQuickAckBit) {
    if (d == Direction::kToClient) {
      // Quick ack toward the client: 4 bytes, big-endian (official server bswaps).
      if (in.size() < 4) return h;
      h.kind = Header::Kind::kQuickAck;
      h.header_size = 4;
      h.token = (std::uint32_t{first} << 24) | load_be24(in.data() + 1);
      return h;
    }
    h.quick_ack = true;
    first &= static_cast<std::uint8_t>(~kAbridgedQuickAckBit);
  }
  std::size_t words = first;
  h.header_size = 1;
  if (first == kAbridgedLongMarker) {
    if (in.size() < 4) return h;
    words = std::to_integer<std::size_t>(in[1]) | (std::to_integer<std::size_t>(in[2]) << 8) |
            (std::to_integer<std::size_t>(in[3]) << 16);
    if (words < kAbridgedLongMarker) {
      return base::fail(Errc::kBadInput, "abridged: overlong length encoding");
    }
    h.header_size = 4;
  }
  if (words == 0) return base::fail(Errc::kBadInput, "abridged: zero-length packet");
  h.length = words * 4;
  if (h.length > kMaxFramePayload) return base::fail(Errc::kTooLarge, "abridged: packet too large");
  h.kind = Header::Kind::kPacket;
  return h;
}

Result<Header> read_intermediate(ByteSpan in, Direction d, bool padded) {
  Header h;
  if (in.size() < 4) return h;
  std::uint32_t v = load_le32(in.data());
  h.header_size = 4;
  if (v & kQuickAckBit) {
    if (d == Direction::kToClient) {
      h.kind = Header::Kind::kQuickAck;
      h.token = v;
      return h;
    }
    h.quick_ack = true;
    v &= ~kQuickAckBit;
  }
  if (v == 0) return base::fail(Errc::kBadInput, "intermediate: zero-length packet");
  if (!padded && v % 4 != 0) {
    return base::fail(Errc::kBadInput, "intermediate: length not a multiple of 4");
  }
  // Padded lengths may carry up to 15 padding bytes beyond the payload cap.
  if (v > kMaxFramePayload + (padded ? 15 : 0)) {
    return base::fail(Errc::kTooLarge, "intermediate: packet too large");
  }
  if (padded && v < 4) return base::fail(Errc::kBadInput, "padded: no payload");
  h.length = v;
  h.kind = Header::Kind::kPacket;
  return h;
}

}  // namespace

Transport transport_for(ProtoTag tag) noexcept {
  switch (tag) {
    case ProtoTag::kAbridged:
      return Transport::kAbridged;
    case ProtoTag::kIntermediate:
      return Transport::kIntermediate;
    case ProtoTag::kPadded:
      return Transport::kPadded;
  }
  return Transport::kPadded;
}

Result<void> encode_packet(Transport t, ByteSpan payload, bool quick_ack_request, Bytes& out,
                           RandomSource* rnd, Direction d) {
  if (payload.empty() || payload.size() % 4 != 0) {
    return base::fail(Errc::kBadInput, "framing: payload must be a non-empty multiple of 4");
  }
  if (payload.size() > kMaxFramePayload)
    return base::fail(Errc::kTooLarge, "framing: payload too large");
  if (quick_ack_request && d == Direction::kToClient) {
    return base::fail(Errc::kBadInput, "framing: quick-ack request toward the client");
  }
  switch (t) {
    case Transport::kAbridged:
      append_abridged_header(out, payload.size() / 4, quick_ack_request);
      append_payload(out, payload);
      break;
    case Transport::kIntermediate:
      append_le32(
          out, static_cast<std::uint32_t>(payload.size()) | (quick_ack_request ? kQuickAckBit : 0));
      append_payload(out, payload);
      break;
    case Transport::kPadded: {
      RandomSource& r = rnd != nullptr ? *rnd : system_random();
      const std::uint32_t pad = r.uniform(0, d == Direction::kToServer ? 15 : 3);
      append_le32(out, (static_cast<std::uint32_t>(payload.size()) + pad) |
                           (quick_ack_request ? kQuickAckBit : 0));
      append_payload(out, payload);
      const std::size_t at = out.size();
      out.resize(at + pad);
      r.fill(MutableByteSpan(out).subspan(at, pad));
      break;
    }
  }
  return {};
}

void encode_quick_ack(Transport t, std::uint32_t token, Bytes& out) {
  token |= kQuickAckBit;
  if (t == Transport::kAbridged) {
    append_be32(out, token);
  } else {
    append_le32(out, token);
  }
}

void encode_transport_error(Transport t, std::int32_t code, Bytes& out) {
  std::byte body[4];
  store_le32(body, static_cast<std::uint32_t>(code));
  if (t == Transport::kAbridged) {
    append_abridged_header(out, 1, false);
  } else {
    append_le32(out, 4);
  }
  out.insert(out.end(), body, body + 4);
}

Result<std::size_t> decode_frames(Transport t, Direction d, ByteSpan in, const FrameSink& sink) {
  std::size_t pos = 0;
  while (pos < in.size()) {
    const ByteSpan rest = in.subspan(pos);
    Result<Header> h = t == Transport::kAbridged
                           ? read_abridged(rest, d)
                           : read_intermediate(rest, d, t == Transport::kPadded);
    if (!h) return tl::unexpected(h.error());
    if (h->kind == Header::Kind::kNeedMore) break;
    Frame f;
    if (h->kind == Header::Kind::kQuickAck) {
      f.kind = Frame::Kind::kQuickAck;
      f.quick_ack = h->token;
      sink(f);
      pos += h->header_size;
      continue;
    }
    if (rest.size() - h->header_size < h->length) break;
    const std::size_t payload_size =
        t == Transport::kPadded ? (h->length & ~std::size_t{3}) : h->length;
    f.payload = rest.subspan(h->header_size, payload_size);
    f.quick_ack_requested = h->quick_ack;
    if (d == Direction::kToClient && payload_size == 4) {
      f.kind = Frame::Kind::kTransportError;
      f.error_code = static_cast<std::int32_t>(load_le32(f.payload.data()));
    }
    sink(f);
    pos += h->header_size + h->length;
  }
  return pos;
}

}  // namespace mtw::proto
