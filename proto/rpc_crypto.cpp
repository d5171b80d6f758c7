// Middle-proxy key derivation and AES-256-CBC stream (protocol.md §8; the
// string layout is the official server's net-crypto-aes.c aes_create_keys).
#include "proto/rpc_crypto.h"

#include <openssl/evp.h>

#include <algorithm>
#include <utility>

#include "base/check.h"

namespace mtw::proto {
namespace {

void append(Bytes& s, ByteSpan b) { s.insert(s.end(), b.begin(), b.end()); }

void append_le(Bytes& s, std::uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s.push_back(std::byte((v >> (8 * i)) & 0xff));
}

// The official server stores the IPv4 address as a host-order u32 written
// little-endian, i.e. the network-order bytes reversed.
void append_ip4(Bytes& s, const std::array<std::byte, 4>& ip, bool zero) {
  for (int i = 3; i >= 0; --i) s.push_back(zero ? std::byte{0} : ip[static_cast<std::size_t>(i)]);
}

template <std::size_t N>
std::array<std::byte, N> digest(const EVP_MD* md, ByteSpan data) {
  std::array<std::byte, EVP_MAX_MD_SIZE> buf{};
  unsigned int n = 0;
  MTW_CHECK(EVP_Digest(data.data(), data.size(), uc(MutableByteSpan(buf)), &n, md, nullptr) == 1);
  MTW_CHECK(n == N);
  std::array<std::byte, N> out{};
  std::copy_n(buf.begin(), N, out.begin());
  return out;
}

}  // namespace

CipherParams derive_rpc_key(const RpcKdfInput& in, RpcKeyPurpose purpose) {
  Bytes s;
  s.reserve(16 * 4 + 32 + 24 + in.proxy_secret.size());
  append(s, in.server_nonce);
  append(s, in.client_nonce);
  append_le(s, in.client_ts, 4);
  append_ip4(s, in.server_ip4, in.ipv6);
  append_le(s, in.client_port, 2);
  append(s, as_bytes(purpose == RpcKeyPurpose::kClient ? "CLIENT" : "SERVER"));
  append_ip4(s, in.client_ip4, in.ipv6);
  append_le(s, in.server_port, 2);
  append(s, in.proxy_secret);
  append(s, in.server_nonce);
  if (in.ipv6) {
    append(s, in.client_ip6);
    append(s, in.server_ip6);
  }
  append(s, in.client_nonce);

  const ByteSpan all(s);
  const auto md5_1 = digest<16>(EVP_md5(), all.subspan(1));
  const auto sha1 = digest<20>(EVP_sha1(), all);
  CipherParams p;
  std::copy_n(md5_1.begin(), 12, p.key.begin());
  std::copy(sha1.begin(), sha1.end(), p.key.begin() + 12);
  p.iv = digest<16>(EVP_md5(), all.subspan(2));
  return p;
}

RpcSessionKeys derive_rpc_session_keys(const RpcKdfInput& in) {
  return {derive_rpc_key(in, RpcKeyPurpose::kClient), derive_rpc_key(in, RpcKeyPurpose::kServer)};
}

Result<AesCbc> AesCbc::create(const CipherParams& p, Mode mode) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr) return base::fail(Errc::kCrypto, "aes-cbc: EVP_CIPHER_CTX_new failed");
  AesCbc out(ctx);  // owns ctx from here on
  if (EVP_CipherInit_ex(ctx, EVP_aes_256_cbc(), nullptr, uc(ByteSpan(p.key)), uc(ByteSpan(p.iv)),
                        mode == Mode::kEncrypt ? 1 : 0) != 1) {
    return base::fail(Errc::kCrypto, "aes-cbc: EVP_CipherInit_ex failed");
  }
  // Frames are padded to the block size by the framing layer; EVP's own
  // padding would also make decryption hold back the last block.
  if (EVP_CIPHER_CTX_set_padding(ctx, 0) != 1) {
    return base::fail(Errc::kCrypto, "aes-cbc: EVP_CIPHER_CTX_set_padding failed");
  }
  return out;
}

AesCbc::AesCbc(AesCbc&& o) noexcept : ctx_(std::exchange(o.ctx_, nullptr)) {}

AesCbc& AesCbc::operator=(AesCbc&& o) noexcept {
  if (this != &o) {
    EVP_CIPHER_CTX_free(ctx_);
    ctx_ = std::exchange(o.ctx_, nullptr);
  }
  return *this;
}

AesCbc::~AesCbc() { EVP_CIPHER_CTX_free(ctx_); }

Result<void> AesCbc::apply(MutableByteSpan data) {
  MTW_CHECK(ctx_ != nullptr);
  if (data.size() % 16 != 0) {
    return base::fail(Errc::kBadInput, "aes-cbc: input not a multiple of 16 bytes");
  }
  // EVP takes int lengths; chunks stay block-aligned so the chain is intact.
  constexpr std::size_t kMaxChunk = std::size_t{1} << 30;
  std::size_t done = 0;
  while (done < data.size()) {
    const std::size_t n = std::min(data.size() - done, kMaxChunk);
    int written = 0;
    const MutableByteSpan chunk = data.subspan(done, n);
    // Whole blocks without padding cannot fail on a valid context.
    MTW_CHECK(
        EVP_CipherUpdate(ctx_, uc(chunk), &written, uc(ByteSpan(chunk)), static_cast<int>(n)) == 1);
    MTW_CHECK(static_cast<std::size_t>(written) == n);
    done += n;
  }
  return {};
}

}  // namespace mtw::proto
