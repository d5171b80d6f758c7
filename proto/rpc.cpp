// Middle-proxy RPC messages (protocol.md §8; layouts as the official server's
// mtproto-proxy.c forward_tcp_query and rpcc_execute read and write them).
#include "proto/rpc.h"

#include <algorithm>
#include <cstdio>
#include <string>

namespace mtw::proto {
namespace {

constexpr std::size_t kHandshakeErrorMin = 8;  // type | i32 error code [| sender_pid]
constexpr std::size_t kProxyAnsHeader = 16;    // type | flags | conn_id
constexpr std::size_t kConnIdMessage = 12;     // type | conn_id (CLOSE_EXT, PING)
constexpr std::size_t kSimpleAckSize = 16;     // type | conn_id | confirm
constexpr std::uint32_t kAdTagExtraSize = 24;  // TL_PROXY_TAG + TL string of 16 bytes
constexpr std::uint8_t kAdTagTlLength = 16;

void append_le32(Bytes& out, std::uint32_t v) {
  std::byte b[4];
  store_le32(b, v);
  out.insert(out.end(), b, b + 4);
}

void append_le64(Bytes& out, std::uint64_t v) {
  append_le32(out, static_cast<std::uint32_t>(v));
  append_le32(out, static_cast<std::uint32_t>(v >> 32));
}

void append(Bytes& out, ByteSpan b) { out.insert(out.end(), b.begin(), b.end()); }

std::uint64_t load_le64(const std::byte* p) noexcept {
  return std::uint64_t{load_le32(p)} | (std::uint64_t{load_le32(p + 4)} << 32);
}

std::string hex32(std::uint32_t v) {
  char buf[11];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

Result<std::uint32_t> read_type(ByteSpan payload) {
  if (payload.size() < 4) return base::fail(Errc::kBadInput, "rpc: message shorter than its type");
  return load_le32(payload.data());
}

tl::unexpected<Error> bad_size(std::uint32_t type) {
  return base::fail(Errc::kBadInput, "rpc: " + std::string(rpc_type_name(type)) + " of wrong size");
}

}  // namespace

RpcPid default_rpc_pid() noexcept {
  constexpr std::string_view kPid = "IPIPPRPDTIME";
  RpcPid pid{};
  std::transform(kPid.begin(), kPid.end(), pid.begin(), [](char c) { return std::byte(c); });
  return pid;
}

std::string_view rpc_type_name(std::uint32_t type) noexcept {
  switch (type) {
    case kRpcNonce:
      return "RPC_NONCE";
    case kRpcHandshake:
      return "RPC_HANDSHAKE";
    case kRpcHandshakeError:
      return "RPC_HANDSHAKE_ERROR";
    case kRpcProxyReq:
      return "RPC_PROXY_REQ";
    case kRpcProxyAns:
      return "RPC_PROXY_ANS";
    case kRpcSimpleAck:
      return "RPC_SIMPLE_ACK";
    case kRpcCloseExt:
      return "RPC_CLOSE_EXT";
    case kRpcCloseConn:
      return "RPC_CLOSE_CONN";
    case kRpcPing:
      return "RPC_PING";
    case kRpcPong:
      return "RPC_PONG";
    default:
      return "unknown";
  }
}

Result<Bytes> build_rpc_nonce(ByteSpan proxy_secret, std::uint32_t unix_time,
                              const RpcNonceBytes& nonce) {
  if (proxy_secret.size() < 4) {
    return base::fail(Errc::kBadInput, "rpc nonce: proxy secret shorter than its key selector");
  }
  Bytes out;
  out.reserve(kRpcNonceSize);
  append_le32(out, kRpcNonce);
  append(out, proxy_secret.first(4));
  append_le32(out, kRpcCryptoAes);
  append_le32(out, unix_time);
  append(out, nonce);
  return out;
}

Result<RpcNonce> parse_rpc_nonce(ByteSpan payload, ByteSpan proxy_secret) {
  if (payload.size() != kRpcNonceSize) return base::fail(Errc::kBadInput, "rpc nonce: wrong size");
  const std::byte* p = payload.data();
  if (load_le32(p) != kRpcNonce) {
    return base::fail(Errc::kBadInput,
                      "rpc nonce: type " + hex32(load_le32(p)) + " is not RPC_NONCE");
  }
  RpcNonce n;
  std::copy_n(p + 4, 4, n.key_select.begin());
  n.schema = load_le32(p + 8);
  n.crypto_ts = load_le32(p + 12);
  std::copy_n(p + 16, 16, n.nonce.begin());
  if (proxy_secret.size() < 4 ||
      !std::equal(n.key_select.begin(), n.key_select.end(), proxy_secret.begin())) {
    return base::fail(Errc::kBadHandshake,
                      "rpc nonce: key selector does not match our proxy secret");
  }
  if (n.schema != kRpcCryptoAes) {
    return base::fail(Errc::kBadHandshake,
                      "rpc nonce: crypto schema " + std::to_string(n.schema) + " is not AES (1)");
  }
  return n;
}

Bytes build_rpc_handshake(const RpcPid& sender_pid, const RpcPid& peer_pid) {
  Bytes out;
  out.reserve(kRpcHandshakeSize);
  append_le32(out, kRpcHandshake);
  append_le32(out, 0);  // flags: none (no CRC32C)
  append(out, sender_pid);
  append(out, peer_pid);
  return out;
}

Result<RpcPid> parse_rpc_handshake(ByteSpan payload, const RpcPid& our_sender_pid) {
  Result<std::uint32_t> type = read_type(payload);
  if (!type) return tl::unexpected(type.error());
  if (*type == kRpcHandshakeError) {
    if (payload.size() < kHandshakeErrorMin) return bad_size(*type);
    const auto code = static_cast<std::int32_t>(load_le32(payload.data() + 4));
    return base::fail(
        Errc::kBadHandshake,
        "rpc handshake: middle proxy answered RPC_HANDSHAKE_ERROR code=" + std::to_string(code));
  }
  if (*type != kRpcHandshake) {
    return base::fail(Errc::kBadInput,
                      "rpc handshake: type " + hex32(*type) + " is not RPC_HANDSHAKE");
  }
  if (payload.size() != kRpcHandshakeSize) return bad_size(*type);
  RpcPid sender{}, peer{};
  std::copy_n(payload.data() + 8, 12, sender.begin());
  std::copy_n(payload.data() + 20, 12, peer.begin());
  if (peer != our_sender_pid) {
    return base::fail(Errc::kBadHandshake, "rpc handshake: peer_pid is not our sender_pid");
  }
  return sender;
}

RpcAddr rpc_addr_v4(const std::array<std::byte, 4>& ip, std::uint16_t port) noexcept {
  RpcAddr a{};
  a[10] = std::byte{0xff};
  a[11] = std::byte{0xff};
  std::copy(ip.begin(), ip.end(), a.begin() + 12);
  store_le32(a.data() + 16, port);
  return a;
}

RpcAddr rpc_addr_v6(const std::array<std::byte, 16>& ip, std::uint16_t port) noexcept {
  RpcAddr a{};
  std::copy(ip.begin(), ip.end(), a.begin());
  store_le32(a.data() + 16, port);
  return a;
}

std::uint32_t proxy_req_flags(Transport t, bool has_ad_tag, bool quick_ack,
                              ByteSpan packet) noexcept {
  std::uint32_t flags = kRpcFlagMagic | kRpcFlagExtMode2;
  switch (t) {
    case Transport::kAbridged:
      flags |= kRpcFlagAbridged;
      break;
    case Transport::kIntermediate:
      flags |= kRpcFlagIntermediate;
      break;
    case Transport::kPadded:
      flags |= kRpcFlagIntermediate | kRpcFlagPad;
      break;
  }
  if (has_ad_tag) flags |= kRpcFlagHasAdTag;
  if (quick_ack) flags |= kRpcFlagQuickAck;
  if (packet.size() >= 8 && std::all_of(packet.begin(), packet.begin() + 8,
                                        [](std::byte b) { return b == std::byte{0}; })) {
    flags |= kRpcFlagNotEncrypted;
  }
  return flags;
}

Result<void> build_proxy_req(const ProxyReqHeader& h, ByteSpan packet, bool quick_ack, Bytes& out) {
  if (packet.empty() || packet.size() % 4 != 0) {
    return base::fail(Errc::kBadInput, "rpc proxy_req: packet empty or not word-aligned");
  }
  const std::uint32_t flags = proxy_req_flags(h.transport, h.ad_tag.has_value(), quick_ack, packet);
  out.reserve(out.size() + 16 + 40 + 28 + packet.size());
  append_le32(out, kRpcProxyReq);
  append_le32(out, flags);
  append_le64(out, h.conn_id);
  append(out, h.client_addr);
  append(out, h.proxy_addr);
  if (h.ad_tag) {
    append_le32(out, kAdTagExtraSize);
    append_le32(out, kTlProxyTag);
    out.push_back(std::byte{kAdTagTlLength});  // TL string: 1-byte length, data, pad to 4
    append(out, *h.ad_tag);
    out.insert(out.end(), 3, std::byte{0});
  }
  append(out, packet);
  return {};
}

Bytes build_close_conn(std::uint64_t conn_id) {
  Bytes out;
  append_le32(out, kRpcCloseConn);
  append_le64(out, conn_id);
  return out;
}

Bytes build_pong(std::uint64_t ping_id) {
  Bytes out;
  append_le32(out, kRpcPong);
  append_le64(out, ping_id);
  return out;
}

Result<RpcInbound> parse_rpc_inbound(ByteSpan payload) {
  Result<std::uint32_t> type = read_type(payload);
  if (!type) return tl::unexpected(type.error());
  const std::byte* p = payload.data();
  switch (*type) {
    case kRpcProxyAns: {
      if (payload.size() < kProxyAnsHeader) return bad_size(*type);
      return RpcProxyAns{load_le32(p + 4), load_le64(p + 8), payload.subspan(kProxyAnsHeader)};
    }
    case kRpcSimpleAck: {
      if (payload.size() != kSimpleAckSize) return bad_size(*type);
      RpcSimpleAck a{load_le64(p + 4), {}};
      std::copy_n(p + 12, 4, a.confirm.begin());
      return a;
    }
    case kRpcCloseExt:
      if (payload.size() != kConnIdMessage) return bad_size(*type);
      return RpcCloseExt{load_le64(p + 4)};
    case kRpcPing:
      if (payload.size() != kConnIdMessage) return bad_size(*type);
      return RpcPing{load_le64(p + 4)};
    default:
      return base::fail(Errc::kBadInput, "rpc: unexpected message type " + hex32(*type) + " (" +
                                             std::string(rpc_type_name(*type)) + ")");
  }
}

}  // namespace mtw::proto
