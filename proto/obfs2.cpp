// obfuscated2 handshakes (protocol.md §2-3): the client's init as the proxy
// parses it, the proxy's own init toward a DC, and a client-side generator.
#include "proto/obfs2.h"

#include <openssl/evp.h>

#include <algorithm>
#include <memory>

#include "base/check.h"
#include "proto/tls_crypto.h"

namespace mtw::proto {
namespace {

using Init = std::array<std::byte, kInitSize>;

constexpr std::size_t kKeyOffset = 8;   // H[8..40): key (seed)
constexpr std::size_t kIvOffset = 40;   // H[40..56): IV
constexpr std::size_t kTagOffset = 56;  // H[56..60): protocol tag, sent encrypted
constexpr std::size_t kDcOffset = 60;   // H[60..62): int16 LE DC index, sent encrypted

// key = SHA256(seed ‖ secret), or the seed itself when there is no secret (DC side).
CipherParams derive(ByteSpan seed32, ByteSpan iv16, const SecretKey* secret) {
  CipherParams p;
  if (secret != nullptr) {
    p.key = sha256({seed32, ByteSpan(*secret)});
  } else {
    std::copy(seed32.begin(), seed32.end(), p.key.begin());
  }
  std::copy(iv16.begin(), iv16.end(), p.iv.begin());
  return p;
}

// Forward params from H[8..56); backward params from its reverse.
void derive_pair(const Init& h, const SecretKey* secret, CipherParams& forward,
                 CipherParams& backward) {
  const ByteSpan hs(h);
  forward = derive(hs.subspan(kKeyOffset, 32), hs.subspan(kIvOffset, 16), secret);
  std::array<std::byte, 48> r{};
  std::reverse_copy(h.begin() + kKeyOffset, h.begin() + kTagOffset, r.begin());
  const ByteSpan rs(r);
  backward = derive(rs.subspan(0, 32), rs.subspan(32, 16), secret);
}

// Encrypts the whole init with `forward` and keeps only bytes 56..64
// encrypted, as every client does. Aborts only if OpenSSL cannot allocate.
void seal_tail(Init& wire, const CipherParams& forward) {
  Result<AesCtr> enc = AesCtr::create(forward);
  MTW_CHECK(enc.has_value());
  Init encrypted = wire;
  enc->apply(encrypted);
  std::copy(encrypted.begin() + kTagOffset, encrypted.end(), wire.begin() + kTagOffset);
}

// Random H with the forbidden prefixes rerolled; H[8..56) from `fixed` if given.
Init random_init(ProtoTag tag, std::int16_t dc, RandomSource& rnd, const Init* fixed) {
  Init h{};
  do {
    rnd.fill(h);
    if (fixed != nullptr)
      std::copy(fixed->begin() + kKeyOffset, fixed->begin() + kTagOffset, h.begin() + kKeyOffset);
  } while (forbidden_init_prefix(h));
  store_le32(h.data() + kTagOffset, static_cast<std::uint32_t>(tag));
  const auto dc_bits = static_cast<std::uint16_t>(dc);
  h[kDcOffset] = std::byte(dc_bits & 0xff);
  h[kDcOffset + 1] = std::byte(dc_bits >> 8);
  return h;
}

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const noexcept { EVP_CIPHER_CTX_free(c); }
};

// One AES-256-ECB context per thread, re-keyed per call: a fresh EVP context
// per secret (fetch + allocation + init) cost more than the AES work itself.
EVP_CIPHER_CTX* thread_ecb_ctx() {
  thread_local const std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree> ctx = [] {
    static EVP_CIPHER* const ecb = EVP_CIPHER_fetch(nullptr, "AES-256-ECB", nullptr);
    MTW_CHECK(ecb != nullptr);
    std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree> c(EVP_CIPHER_CTX_new());
    MTW_CHECK(c != nullptr);
    MTW_CHECK(EVP_EncryptInit_ex(c.get(), ecb, nullptr, nullptr, nullptr) == 1);
    MTW_CHECK(EVP_CIPHER_CTX_set_padding(c.get(), 0) == 1);
    return c;
  }();
  return ctx.get();
}

// The CTR keystream block that covers init bytes 48..64 (the fourth block):
// AES_key(IV + 3), the IV read as a 128-bit big-endian counter.
std::array<std::byte, 16> keystream_block3(const CipherParams& p) {
  std::array<std::byte, 16> counter = p.iv;
  unsigned carry = 3;
  for (std::size_t i = counter.size(); i-- > 0 && carry != 0;) {
    carry += std::to_integer<unsigned>(counter[i]);
    counter[i] = std::byte(carry & 0xff);
    carry >>= 8;
  }
  EVP_CIPHER_CTX* ctx = thread_ecb_ctx();
  MTW_CHECK(EVP_EncryptInit_ex(ctx, nullptr, nullptr, uc(ByteSpan(p.key)), nullptr) == 1);
  std::array<std::byte, 16> out{};
  int n = 0;
  MTW_CHECK(EVP_EncryptUpdate(ctx, uc(MutableByteSpan(out)), &n, uc(ByteSpan(counter)),
                              static_cast<int>(counter.size())) == 1);
  MTW_CHECK(n == static_cast<int>(out.size()));
  return out;
}

// Tag and DC under `decrypt` (the client->proxy params).
InitTail decrypt_tail(std::span<const std::byte, kInitSize> init, const CipherParams& decrypt) {
  const std::array<std::byte, 16> ks = keystream_block3(decrypt);
  std::array<std::byte, 8> tail{};  // init bytes 56..64 = block 3 bytes 8..16
  for (std::size_t i = 0; i < tail.size(); ++i) tail[i] = init[kTagOffset + i] ^ ks[8 + i];
  constexpr std::size_t kDc = kDcOffset - kTagOffset;
  InitTail out;
  out.tag = load_le32(tail.data());
  out.dc = static_cast<std::int16_t>(std::to_integer<std::uint16_t>(tail[kDc]) |
                                     (std::to_integer<std::uint16_t>(tail[kDc + 1]) << 8));
  return out;
}

Result<Streams> make_streams(const CipherParams& dec, const CipherParams& enc, bool skip_decrypt) {
  Result<AesCtr> d = AesCtr::create(dec);
  if (!d) return tl::unexpected(d.error());
  Result<AesCtr> e = AesCtr::create(enc);
  if (!e) return tl::unexpected(e.error());
  // The 64 init bytes consumed the first 64 bytes of that stream.
  Init discard{};
  (skip_decrypt ? *d : *e).apply(discard);
  return Streams{std::move(*d), std::move(*e)};
}

}  // namespace

InitTail peek_client_init(std::span<const std::byte, kInitSize> init, const SecretKey& secret) {
  const CipherParams decrypt =
      derive(init.subspan<kKeyOffset, 32>(), init.subspan<kIvOffset, 16>(), &secret);
  return decrypt_tail(init, decrypt);
}

bool is_known_tag(std::uint32_t v) noexcept {
  return v == static_cast<std::uint32_t>(ProtoTag::kAbridged) ||
         v == static_cast<std::uint32_t>(ProtoTag::kIntermediate) ||
         v == static_cast<std::uint32_t>(ProtoTag::kPadded);
}

Result<ClientInit> parse_client_init(std::span<const std::byte, kInitSize> init,
                                     const SecretKey& secret) {
  ClientInit out;
  out.decrypt = derive(init.subspan<kKeyOffset, 32>(), init.subspan<kIvOffset, 16>(), &secret);
  const InitTail tail = decrypt_tail(init, out.decrypt);
  if (!is_known_tag(tail.tag)) {
    return base::fail(Errc::kBadHandshake, "obfs2: unknown protocol tag (wrong secret?)");
  }
  std::array<std::byte, 48> r{};  // reverse(H[8..56))
  std::reverse_copy(init.begin() + kKeyOffset, init.begin() + kTagOffset, r.begin());
  out.encrypt = derive(ByteSpan(r).first(32), ByteSpan(r).subspan(32, 16), &secret);
  out.tag = static_cast<ProtoTag>(tail.tag);
  out.dc = tail.dc;
  return out;
}

Result<Streams> make_client_streams(const ClientInit& init) {
  return make_streams(init.decrypt, init.encrypt, /*skip_decrypt=*/true);
}

DcInit build_dc_init(ProtoTag tag, std::int16_t dc, RandomSource& rnd,
                     const CipherParams* fast_client_encrypt) {
  Init fixed{};
  if (fast_client_encrypt != nullptr) {
    // H[8..56) = reverse(key ‖ iv), so the DC's R = key ‖ iv: its stream toward
    // us is exactly our stream toward the client.
    std::array<std::byte, 48> key_iv{};
    std::copy(fast_client_encrypt->key.begin(), fast_client_encrypt->key.end(), key_iv.begin());
    std::copy(fast_client_encrypt->iv.begin(), fast_client_encrypt->iv.end(), key_iv.begin() + 32);
    std::reverse_copy(key_iv.begin(), key_iv.end(), fixed.begin() + kKeyOffset);
  }
  DcInit out;
  out.wire = random_init(tag, dc, rnd, fast_client_encrypt != nullptr ? &fixed : nullptr);
  derive_pair(out.wire, nullptr, out.encrypt, out.decrypt);
  seal_tail(out.wire, out.encrypt);
  return out;
}

Result<Streams> make_dc_streams(const DcInit& init) {
  return make_streams(init.decrypt, init.encrypt, /*skip_decrypt=*/false);
}

ClientSideInit build_client_init(const SecretKey& secret, ProtoTag tag, std::int16_t dc,
                                 RandomSource& rnd) {
  ClientSideInit out;
  out.wire = random_init(tag, dc, rnd, nullptr);
  derive_pair(out.wire, &secret, out.encrypt, out.decrypt);
  seal_tail(out.wire, out.encrypt);
  return out;
}

Result<Streams> make_client_side_streams(const ClientSideInit& init) {
  return make_streams(init.decrypt, init.encrypt, /*skip_decrypt=*/false);
}

bool forbidden_init_prefix(std::span<const std::byte, kInitSize> h) noexcept {
  if (h[0] == std::byte{0xef}) return true;  // abridged marker of the unobfuscated protocol
  switch (load_le32(h.data())) {
    case 0x44414548:  // "HEAD"
    case 0x54534f50:  // "POST"
    case 0x20544547:  // "GET "
    case 0x4954504f:  // "OPTI"
    case 0x02010316:  // 16 03 01 02: a TLS ClientHello
    case 0xdddddddd:  // plain padded-intermediate tag
    case 0xeeeeeeee:  // plain intermediate tag
      return true;
    default:
      break;
  }
  return load_le32(h.data() + 4) == 0;
}

}  // namespace mtw::proto
