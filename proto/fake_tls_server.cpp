// The fake-TLS server answer (ServerHello ‖ CCS ‖ ApplicationData) and its
// client-side check (protocol.md §5 "Response").
#include <algorithm>

#include "proto/fake_tls.h"
#include "proto/tls_crypto.h"
#include "proto/tls_profile.h"

namespace mtw::proto {
namespace {

constexpr std::size_t kRandomOffset = 11;
constexpr std::size_t kRandomSize = 32;
constexpr std::size_t kMaxAppData = 16384;
// ServerHello body without the session id: version 2, random 32, sid length
// 1, suite 2, compression 1, extensions length 2, key_share 40, versions 6.
constexpr std::size_t kServerHelloBodyBase = 86;
constexpr std::byte kCcs[6] = {std::byte{0x14}, std::byte{0x03}, std::byte{0x03},
                               std::byte{0x00}, std::byte{0x01}, std::byte{0x01}};

void put(Bytes& out, std::initializer_list<unsigned> bytes) {
  for (unsigned b : bytes) out.push_back(static_cast<std::byte>(b));
}
void put(Bytes& out, ByteSpan bytes) { out.insert(out.end(), bytes.begin(), bytes.end()); }
void put_be16(Bytes& out, std::size_t v) {
  put(out, {unsigned(v >> 8) & 0xff, unsigned(v) & 0xff});
}

// Appends CCS and one AppData record of `n` random bytes to the ServerHello
// in `out`, then writes the HMAC over client random ‖ everything into the
// ServerHello's random (protocol.md §5), as both answers need.
void seal_first_flight(Bytes& out, std::size_t n, const ClientHello& hello, const SecretKey& key,
                       RandomSource& rnd) {
  put(out, kCcs);
  put(out, {0x17, 0x03, 0x03});
  put_be16(out, n);
  const std::size_t data = out.size();
  out.resize(data + n);
  rnd.fill(MutableByteSpan(out).subspan(data));
  const Sha256Digest mac = hmac_sha256(key, {hello.random, out});
  std::copy(mac.begin(), mac.end(), out.begin() + kRandomOffset);
}

}  // namespace

Bytes build_server_hello(const ClientHello& hello, const SecretKey& key,
                         const ServerHelloOptions& opts, RandomSource& rnd) {
  const std::size_t sid_len = std::min<std::size_t>(hello.session_id_len, 32);
  const std::size_t body = kServerHelloBodyBase + sid_len;
  const std::size_t lo = std::clamp<std::size_t>(opts.app_data_min, 1, kMaxAppData);
  const std::size_t hi = std::clamp<std::size_t>(opts.app_data_max, lo, kMaxAppData);
  const std::size_t n = rnd.uniform(static_cast<std::uint32_t>(lo), static_cast<std::uint32_t>(hi));

  std::array<std::byte, 32> priv{};
  rnd.fill(priv);
  const auto pub = x25519_public_key(priv);

  Bytes out;
  out.reserve(kTlsHeaderSize + 4 + body + sizeof(kCcs) + kTlsHeaderSize + n);
  put(out, {0x16, 0x03, 0x03});
  put_be16(out, 4 + body);
  put(out, {0x02, 0x00});
  put_be16(out, body);
  put(out, {0x03, 0x03});
  out.resize(out.size() + kRandomSize);  // srv_random, zero until the HMAC is known
  out.push_back(static_cast<std::byte>(sid_len));
  put(out, ByteSpan(hello.session_id).first(sid_len));
  put_be16(out, hello.cipher_suite);
  put(out, {0x00, 0x00, 0x2e});                                // no compression; ext len 46
  put(out, {0x00, 0x33, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20});  // key_share: x25519
  put(out, pub);
  put(out, {0x00, 0x2b, 0x00, 0x02, 0x03, 0x04});  // supported_versions: 1.3
  seal_first_flight(out, n, hello, key, rnd);
  return out;
}

Bytes build_server_hello(const ClientHello& hello, const SecretKey& key, const TlsProfile& profile,
                         RandomSource& rnd) {
  const std::size_t sid_len =
      profile.session_id_echo ? std::min<std::size_t>(hello.session_id_len, 32) : 0;
  Bytes exts;
  for (const TlsExtension& e : profile.extensions) {
    put_be16(exts, e.type);
    if (e.type != kExtKeyShare) {
      put_be16(exts, e.body.size());
      put(exts, e.body);
      continue;
    }
    // A fresh share every time. x25519 gets a real point; for other groups
    // the bytes are random (a P-256 share keeps its 04 prefix), which only a
    // peer that does the key exchange could tell.
    put_be16(exts, 4 + profile.key_share_len);
    put_be16(exts, profile.key_share_group);
    put_be16(exts, profile.key_share_len);
    const std::size_t at = exts.size();
    exts.resize(at + profile.key_share_len);
    const MutableByteSpan share = MutableByteSpan(exts).subspan(at);
    if (profile.key_share_group == kGroupX25519 && profile.key_share_len == 32) {
      std::array<std::byte, 32> priv{};
      rnd.fill(priv);
      const auto pub = x25519_public_key(priv);
      std::copy(pub.begin(), pub.end(), share.begin());
    } else {
      rnd.fill(share);
      if (profile.key_share_group == 0x0017) share[0] = std::byte{0x04};
    }
  }
  const std::size_t body = 2 + kRandomSize + 1 + sid_len + 2 + 1 + 2 + exts.size();

  // One AppData record as large on the wire as the mask's whole encrypted
  // flight: clients read exactly one record before checking the HMAC.
  const RecordRange wire = flight_wire_range(profile);
  const std::size_t lo =
      std::clamp<std::size_t>(wire.min, kTlsHeaderSize + 1, kTlsHeaderSize + kMaxProfileRecord);
  const std::size_t hi = std::clamp<std::size_t>(wire.max, lo, kTlsHeaderSize + kMaxProfileRecord);
  const std::size_t n =
      rnd.uniform(static_cast<std::uint32_t>(lo), static_cast<std::uint32_t>(hi)) - kTlsHeaderSize;

  Bytes out;
  out.reserve(kTlsHeaderSize + 4 + body + sizeof(kCcs) + kTlsHeaderSize + n);
  put(out, {0x16, 0x03, 0x03});
  put_be16(out, 4 + body);
  put(out, {0x02, 0x00});
  put_be16(out, body);
  put_be16(out, profile.legacy_version);
  out.resize(out.size() + kRandomSize);  // srv_random, zero until the HMAC is known
  out.push_back(static_cast<std::byte>(sid_len));
  put(out, ByteSpan(hello.session_id).first(sid_len));
  put_be16(out, profile.cipher_suite);
  out.push_back(std::byte{0x00});  // no compression
  put_be16(out, exts.size());
  put(out, exts);
  seal_first_flight(out, n, hello, key, rnd);
  return out;
}

Result<std::size_t> verify_server_hello(ByteSpan in, std::span<const std::byte, 32> client_random,
                                        const SecretKey& key) {
  auto short_input = [] { return base::fail(Errc::kShortInput, "tls: server answer incomplete"); };
  auto bad = [](const char* why) { return base::fail(Errc::kBadHandshake, why); };
  if (in.size() < kTlsHeaderSize) return short_input();
  if (in[0] != std::byte{0x16} || in[1] != std::byte{0x03} || in[2] != std::byte{0x03}) {
    return bad("tls: answer does not start with 16 03 03");
  }
  const std::size_t hello_end = kTlsHeaderSize + load_be16(in.data() + 3);
  if (hello_end < kRandomOffset + kRandomSize) return bad("tls: ServerHello too short");
  const std::size_t app_header = hello_end + sizeof(kCcs);
  if (in.size() < app_header + kTlsHeaderSize) return short_input();
  if (!std::equal(std::begin(kCcs), std::end(kCcs), in.begin() + hello_end) ||
      in[app_header] != std::byte{0x17} || in[app_header + 1] != std::byte{0x03} ||
      in[app_header + 2] != std::byte{0x03}) {
    return bad("tls: answer lacks CCS + application data");
  }
  const std::size_t total = app_header + kTlsHeaderSize + load_be16(in.data() + app_header + 3);
  if (in.size() < total) return short_input();

  Bytes copy(in.begin(), in.begin() + total);
  std::fill_n(copy.begin() + kRandomOffset, kRandomSize, std::byte{0});
  const Sha256Digest mac = hmac_sha256(key, {client_random, copy});
  if (!std::equal(mac.begin(), mac.end(), in.begin() + kRandomOffset)) {
    return bad("tls: server random HMAC mismatch");
  }
  return total;
}

}  // namespace mtw::proto
