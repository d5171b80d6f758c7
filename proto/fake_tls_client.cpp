// A client-side fake-TLS ClientHello (tests, benchmarks, probes), shaped like
// the Chrome-style hello TDLib sends: GREASE, SNI, x25519 key share, padding
// to 517 bytes, random = HMAC(K, hello) xor (0^28 ‖ LE u32 unix time).
#include <algorithm>

#include "proto/fake_tls.h"
#include "proto/tls_crypto.h"

namespace mtw::proto {
namespace {

constexpr std::size_t kRandomOffset = 11;
constexpr std::size_t kTargetRecord = 517;  // header + 512-byte handshake

class Writer {
 public:
  // Reserving also quiets a GCC 12 -Wstringop-overflow false positive (Release).
  Writer() { out_.reserve(kTargetRecord + 256); }
  void u8(unsigned v) { out_.push_back(static_cast<std::byte>(v & 0xff)); }
  void u16(unsigned v) { u8(v >> 8), u8(v); }
  void raw(std::initializer_list<unsigned> bytes) {
    for (unsigned b : bytes) u8(b);
  }
  void raw(ByteSpan b) { out_.insert(out_.end(), b.begin(), b.end()); }
  // Starts a big-endian length field of `width` bytes; end() fills it in.
  std::size_t begin(std::size_t width) {
    out_.resize(out_.size() + width);
    return out_.size();
  }
  void end(std::size_t start, std::size_t width) {
    const std::size_t n = out_.size() - start;
    for (std::size_t i = 0; i < width; ++i) {
      out_[start - 1 - i] = static_cast<std::byte>((n >> (8 * i)) & 0xff);
    }
  }
  std::size_t size() const { return out_.size(); }
  Bytes take() { return std::move(out_); }

 private:
  Bytes out_;
};

unsigned grease(RandomSource& rnd) {
  std::array<std::byte, 1> b{};
  rnd.fill(b);
  const unsigned v = (std::to_integer<unsigned>(b[0]) & 0xf0) | 0x0a;
  return (v << 8) | v;
}

void write_extensions(Writer& w, std::string_view domain, ByteSpan key_share, RandomSource& rnd) {
  const unsigned g_ext1 = grease(rnd);
  const unsigned g_group = grease(rnd);
  const unsigned g_version = grease(rnd);
  w.u16(g_ext1), w.u16(0);
  if (!domain.empty()) {
    w.u16(0x0000);
    auto ext = w.begin(2);
    auto list = w.begin(2);
    w.u8(0);
    w.u16(static_cast<unsigned>(domain.size()));
    w.raw(as_bytes(domain));
    w.end(list, 2), w.end(ext, 2);
  }
  w.raw({0x00, 0x17, 0x00, 0x00});              // extended_master_secret
  w.raw({0xff, 0x01, 0x00, 0x01, 0x00});        // renegotiation_info
  w.raw({0x00, 0x0a, 0x00, 0x0a, 0x00, 0x08});  // supported_groups
  w.u16(g_group), w.raw({0x00, 0x1d, 0x00, 0x17, 0x00, 0x18});
  w.raw({0x00, 0x0b, 0x00, 0x02, 0x01, 0x00});                // ec_point_formats
  w.raw({0x00, 0x23, 0x00, 0x00});                            // session_ticket
  w.raw({0x00, 0x10, 0x00, 0x0e, 0x00, 0x0c, 0x02, 'h', '2',  // ALPN
         0x08, 'h', 't', 't', 'p', '/', '1', '.', '1'});
  w.raw({0x00, 0x05, 0x00, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00});      // status_request
  w.raw({0x00, 0x0d, 0x00, 0x12, 0x00, 0x10, 0x04, 0x03, 0x08, 0x04,  // signature_algorithms
         0x04, 0x01, 0x05, 0x03, 0x08, 0x05, 0x05, 0x01, 0x08, 0x06, 0x06, 0x01});
  w.raw({0x00, 0x12, 0x00, 0x00});              // signed_certificate_timestamp
  w.raw({0x00, 0x33, 0x00, 0x2b, 0x00, 0x29});  // key_share: GREASE(1 byte) + x25519
  w.u16(g_group), w.raw({0x00, 0x01, 0x00, 0x00, 0x1d, 0x00, 0x20});
  w.raw(key_share);
  w.raw({0x00, 0x2d, 0x00, 0x02, 0x01, 0x01});  // psk_key_exchange_modes
  w.raw({0x00, 0x2b, 0x00, 0x0b, 0x0a});        // supported_versions
  w.u16(g_version), w.raw({0x03, 0x04, 0x03, 0x03, 0x03, 0x02, 0x03, 0x01});
  w.raw({0x00, 0x1b, 0x00, 0x03, 0x02, 0x00, 0x02});  // compress_certificate
  const unsigned g_ext2 = grease(rnd) ^ 0x1010;       // differs from g_ext1
  w.u16(g_ext2 == g_ext1 ? g_ext1 ^ 0x2020 : g_ext2), w.raw({0x00, 0x01, 0x00});
  if (w.size() + 4 <= kTargetRecord) {  // padding (RFC 7685) up to 517 bytes
    const std::size_t pad = kTargetRecord - w.size() - 4;
    w.u16(0x0015), w.u16(static_cast<unsigned>(pad));
    for (std::size_t i = 0; i < pad; ++i) w.u8(0);
  }
}

}  // namespace

Bytes build_client_hello(const Secret& secret, std::int64_t now, RandomSource& rnd) {
  std::array<std::byte, 32> session_id{};
  std::array<std::byte, 32> priv{};
  rnd.fill(session_id);
  rnd.fill(priv);
  const auto pub = x25519_public_key(priv);

  Writer w;
  w.raw({0x16, 0x03, 0x01});
  const auto record = w.begin(2);
  w.u8(0x01);
  const auto handshake = w.begin(3);
  w.raw({0x03, 0x03});
  w.raw(std::array<std::byte, 32>{});  // random, filled in below
  w.u8(32), w.raw(session_id);
  const auto suites = w.begin(2);
  w.u16(grease(rnd));
  w.raw({0x13, 0x01, 0x13, 0x02, 0x13, 0x03, 0xc0, 0x2b, 0xc0, 0x2f, 0xc0, 0x2c, 0xc0, 0x30, 0xcc,
         0xa9, 0xcc, 0xa8, 0xc0, 0x13, 0xc0, 0x14, 0x00, 0x9c, 0x00, 0x9d, 0x00, 0x2f, 0x00, 0x35});
  w.end(suites, 2);
  w.raw({0x01, 0x00});  // compression: null only
  const auto exts = w.begin(2);
  write_extensions(w, secret.domain, pub, rnd);
  w.end(exts, 2), w.end(handshake, 3), w.end(record, 2);

  Bytes hello = w.take();
  const Sha256Digest mac = hmac_sha256(secret.key, {hello});
  std::array<std::byte, 4> ts{};
  store_le32(ts.data(), static_cast<std::uint32_t>(now));
  for (std::size_t i = 0; i < mac.size(); ++i) {
    hello[kRandomOffset + i] = mac[i] ^ (i < 28 ? std::byte{0} : ts[i - 28]);
  }
  return hello;
}

}  // namespace mtw::proto
