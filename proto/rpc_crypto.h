// Middle-proxy RPC encryption (protocol.md §8): the key derivation of the
// official server's aes_create_keys (MD5/SHA1 over both nonces, the time,
// both addresses and the proxy secret) and the AES-256-CBC stream that
// carries every frame after RPC_NONCE, its IV chained across calls. Pure:
// no sockets; the caller supplies addresses as the TCP connection saw them
// (with the public address in place of a NATed local one). AesCbc is
// move-only, one per direction per connection, not thread-safe.
#pragma once

#include <array>
#include <cstdint>

#include "proto/aes_ctr.h"  // CipherParams
#include "proto/bytes.h"

struct evp_cipher_ctx_st;

namespace mtw::proto {

// Inputs of one derivation. "server" is the middle proxy, "client" is us;
// nonces are the ones carried in the two RPC_NONCE messages, client_ts is
// the time in ours. Addresses are in network byte order. Over IPv4 the ip6
// fields are ignored; over IPv6 the ip4 fields are ignored (both count as 0).
struct RpcKdfInput {
  std::array<std::byte, 16> server_nonce{};
  std::array<std::byte, 16> client_nonce{};
  std::uint32_t client_ts = 0;
  bool ipv6 = false;
  std::array<std::byte, 4> server_ip4{}, client_ip4{};
  std::array<std::byte, 16> server_ip6{}, client_ip6{};
  std::uint16_t server_port = 0, client_port = 0;
  ByteSpan proxy_secret;  // borrowed for the call
};

// "CLIENT" keys encrypt what we send, "SERVER" keys decrypt what we receive.
enum class RpcKeyPurpose { kClient, kServer };

// key = MD5(s[1..])[0..12) ‖ SHA1(s), iv = MD5(s[2..]). Cannot fail on valid
// input; a failing digest (OpenSSL out of memory) aborts.
CipherParams derive_rpc_key(const RpcKdfInput& in, RpcKeyPurpose purpose);

struct RpcSessionKeys {
  CipherParams encrypt;  // kClient
  CipherParams decrypt;  // kServer
};
RpcSessionKeys derive_rpc_session_keys(const RpcKdfInput& in);

// AES-256-CBC without padding over a stream of whole 16-byte blocks; the IV
// of each call is the last ciphertext block of the previous one.
class AesCbc {
 public:
  enum class Mode { kEncrypt, kDecrypt };
  // kCrypto if OpenSSL cannot allocate or initialise the context.
  [[nodiscard]] static Result<AesCbc> create(const CipherParams& p, Mode mode);

  AesCbc() noexcept = default;  // empty: apply() must not be called
  AesCbc(AesCbc&& o) noexcept;
  AesCbc& operator=(AesCbc&& o) noexcept;
  AesCbc(const AesCbc&) = delete;
  ~AesCbc();

  bool valid() const noexcept { return ctx_ != nullptr; }
  // Encrypts or decrypts `data` in place. kBadInput (nothing changed) if its
  // size is not a multiple of 16: a decrypting caller keeps the partial
  // block until the rest arrives.
  [[nodiscard]] Result<void> apply(MutableByteSpan data);

 private:
  explicit AesCbc(evp_cipher_ctx_st* ctx) noexcept : ctx_(ctx) {}
  evp_cipher_ctx_st* ctx_ = nullptr;
};

}  // namespace mtw::proto
