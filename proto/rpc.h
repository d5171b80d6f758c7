// Middle-proxy RPC messages (protocol.md §8): the payloads carried inside
// RpcFrame* frames. Handshake (RPC_NONCE in clear, RPC_HANDSHAKE encrypted),
// then RPC_PROXY_REQ / CLOSE_CONN / PONG out and PROXY_ANS / SIMPLE_ACK /
// CLOSE_EXT / PING in. Pure functions over byte spans; thread-safe. Every
// parser treats its input as hostile: an error means "close this middle-proxy
// connection", never a crash.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <variant>

#include "proto/bytes.h"
#include "proto/framing.h"  // Transport

namespace mtw::proto {

// Message types as LE u32 values (MTP common/rpc-const.h, mtproto-common.h).
inline constexpr std::uint32_t kRpcNonce = 0x7acb87aa;
inline constexpr std::uint32_t kRpcHandshake = 0x7682eef5;
inline constexpr std::uint32_t kRpcHandshakeError = 0x6a27beda;
inline constexpr std::uint32_t kRpcProxyReq = 0x36cef1ee;
inline constexpr std::uint32_t kRpcProxyAns = 0x4403da0d;
inline constexpr std::uint32_t kRpcSimpleAck = 0x3bac409b;
inline constexpr std::uint32_t kRpcCloseExt = 0x5eb634a2;
inline constexpr std::uint32_t kRpcCloseConn = 0x1fcf425d;
inline constexpr std::uint32_t kRpcPing = 0x5730a2df;
inline constexpr std::uint32_t kRpcPong = 0x8430eaa7;
inline constexpr std::uint32_t kTlProxyTag = 0xdb1e26ae;
inline constexpr std::uint32_t kRpcCryptoAes = 1;  // RPC_NONCE crypto schema

// RPC_PROXY_REQ flags.
inline constexpr std::uint32_t kRpcFlagNotEncrypted = 0x2;  // auth_key_id == 0
inline constexpr std::uint32_t kRpcFlagHasAdTag = 0x8;
inline constexpr std::uint32_t kRpcFlagMagic = 0x1000;
inline constexpr std::uint32_t kRpcFlagExtMode2 = 0x20000;
inline constexpr std::uint32_t kRpcFlagPad = 0x8000000;
inline constexpr std::uint32_t kRpcFlagIntermediate = 0x20000000;
inline constexpr std::uint32_t kRpcFlagAbridged = 0x40000000;
inline constexpr std::uint32_t kRpcFlagQuickAck = 0x80000000;

using RpcNonceBytes = std::array<std::byte, 16>;
// A process id is 12 opaque bytes (ip, port, pid, start time in MTP).
using RpcPid = std::array<std::byte, 12>;
// "IPIPPRPDTIME": what the reference proxies send; accepted by middle proxies.
RpcPid default_rpc_pid() noexcept;
using AdTag = std::array<std::byte, 16>;

// --- handshake -------------------------------------------------------------

inline constexpr std::size_t kRpcNonceSize = 32;
inline constexpr std::size_t kRpcHandshakeSize = 32;

struct RpcNonce {
  std::array<std::byte, 4> key_select{};
  std::uint32_t schema = kRpcCryptoAes;
  std::uint32_t crypto_ts = 0;
  RpcNonceBytes nonce{};
};

// `aa87cb7a | proxy_secret[0..4) | u32 1 | u32 ts | nonce`. kBadInput if the
// secret has fewer than 4 bytes.
[[nodiscard]] Result<Bytes> build_rpc_nonce(ByteSpan proxy_secret, std::uint32_t unix_time,
                                            const RpcNonceBytes& nonce);
// The middle proxy's RPC_NONCE. kBadInput: wrong size or type; kBadHandshake:
// key_select is not proxy_secret[0..4) (the middle proxy has another
// secret) or the schema is not AES.
[[nodiscard]] Result<RpcNonce> parse_rpc_nonce(ByteSpan payload, ByteSpan proxy_secret);

// `f5ee8276 | u32 0 | sender_pid | peer_pid`.
Bytes build_rpc_handshake(const RpcPid& sender_pid, const RpcPid& peer_pid);
// The middle proxy's RPC_HANDSHAKE; returns its sender_pid. kBadHandshake:
// peer_pid differs from `our_sender_pid`, or the message is
// RPC_HANDSHAKE_ERROR (its error code in the context). kBadInput: wrong size
// or an unknown type.
[[nodiscard]] Result<RpcPid> parse_rpc_handshake(ByteSpan payload, const RpcPid& our_sender_pid);

// --- outbound --------------------------------------------------------------

// A client or proxy address as RPC_PROXY_REQ carries it: 16 address bytes
// (IPv4 as ::ffff:a.b.c.d) and a u32 port. Addresses in network order.
using RpcAddr = std::array<std::byte, 20>;
RpcAddr rpc_addr_v4(const std::array<std::byte, 4>& ip, std::uint16_t port) noexcept;
RpcAddr rpc_addr_v6(const std::array<std::byte, 16>& ip, std::uint16_t port) noexcept;

struct ProxyReqHeader {
  std::uint64_t conn_id = 0;
  RpcAddr client_addr{};  // the Telegram client's address
  RpcAddr proxy_addr{};   // our listening address as the client reached it
  // The client's transport. Fake TLS uses the transport of the tag inside
  // its init (dd in practice), as the reference servers do: the flags carry
  // no TLS bit.
  Transport transport = Transport::kIntermediate;
  std::optional<AdTag> ad_tag;
};

// The flags for one packet: magic and extmode2 always; the transport
// (abridged; intermediate; padded = intermediate | pad); ad tag if any;
// not-encrypted when the packet's auth_key_id (first 8 bytes) is 0; quick
// ack when the client asked for one on this packet.
std::uint32_t proxy_req_flags(Transport t, bool has_ad_tag, bool quick_ack,
                              ByteSpan packet) noexcept;
// Appends `eef1ce36 | flags | conn_id | client | proxy | [u32 24 | ae261edb |
// 10 | ad_tag | 000000] | packet`. kBadInput if the packet is empty or not a
// multiple of 4 bytes (MTProto packets are word-aligned).
[[nodiscard]] Result<void> build_proxy_req(const ProxyReqHeader& h, ByteSpan packet, bool quick_ack,
                                           Bytes& out);
// `5d42cf1f | conn_id`: the client is gone, or an answer named an unknown id.
Bytes build_close_conn(std::uint64_t conn_id);
// `8430eaa7 | ping_id`: the answer to RPC_PING.
Bytes build_pong(std::uint64_t ping_id);

// --- inbound ---------------------------------------------------------------

struct RpcProxyAns {
  std::uint32_t flags = 0;
  std::uint64_t conn_id = 0;
  ByteSpan data;  // the client's packet; borrows the parsed payload
};
struct RpcSimpleAck {
  std::uint64_t conn_id = 0;
  // As sent. Toward the client: encode_quick_ack(t, load_le32(confirm)),
  // which writes it back as is (top bit set), byte-swapped for abridged.
  std::array<std::byte, 4> confirm{};
};
struct RpcCloseExt {
  std::uint64_t conn_id = 0;
};
struct RpcPing {
  std::uint64_t ping_id = 0;
};
using RpcInbound = std::variant<RpcProxyAns, RpcSimpleAck, RpcCloseExt, RpcPing>;

// One frame's payload after the handshake. kBadInput: shorter than 4 bytes,
// a known type with the wrong size (fixed-size messages must match exactly;
// PROXY_ANS needs its 16-byte header), or an unknown type (named in the
// context). The result may borrow `payload`.
[[nodiscard]] Result<RpcInbound> parse_rpc_inbound(ByteSpan payload);

std::string_view rpc_type_name(std::uint32_t type) noexcept;  // "unknown" if not one of ours

}  // namespace mtw::proto
