// obfuscated2 handshakes (protocol.md §2-3): the client's init as the proxy
// parses it, the proxy's own init toward a DC, and a client-side generator.
#include "proto/obfs2.h"

#include <openssl/sha.h>

#include <algorithm>

#include "base/check.h"

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
    std::array<std::byte, 48> buf{};
    std::copy(seed32.begin(), seed32.end(), buf.begin());
    std::copy(secret->begin(), secret->end(), buf.begin() + 32);
    SHA256(uc(ByteSpan(buf)), buf.size(), uc(MutableByteSpan(p.key)));
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

bool known_tag(std::uint32_t v) noexcept {
  return v == static_cast<std::uint32_t>(ProtoTag::kAbridged) ||
         v == static_cast<std::uint32_t>(ProtoTag::kIntermediate) ||
         v == static_cast<std::uint32_t>(ProtoTag::kPadded);
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

Result<ClientInit> parse_client_init(std::span<const std::byte, kInitSize> init,
                                     const SecretKey& secret) {
  Init h;
  std::copy(init.begin(), init.end(), h.begin());
  ClientInit out;
  derive_pair(h, &secret, out.decrypt, out.encrypt);
  Result<AesCtr> dec = AesCtr::create(out.decrypt);
  if (!dec) return tl::unexpected(dec.error());
  dec->apply(h);
  const std::uint32_t tag = load_le32(h.data() + kTagOffset);
  if (!known_tag(tag)) {
    return base::fail(Errc::kBadHandshake, "obfs2: unknown protocol tag (wrong secret?)");
  }
  out.tag = static_cast<ProtoTag>(tag);
  out.dc = static_cast<std::int16_t>(std::to_integer<std::uint16_t>(h[kDcOffset]) |
                                     (std::to_integer<std::uint16_t>(h[kDcOffset + 1]) << 8));
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
