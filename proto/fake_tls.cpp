// ClientHello scanning, parsing and validation (protocol.md §5).
#include "proto/fake_tls.h"

#include <algorithm>

#include "proto/tls_crypto.h"

namespace mtw::proto {
namespace {

constexpr std::byte kHandshakeRecord[3] = {std::byte{0x16}, std::byte{0x03}, std::byte{0x01}};
constexpr std::byte kClientHelloType{0x01};
constexpr std::size_t kMaxRecordPayload = 16384;  // RFC 8446 plaintext limit
constexpr std::size_t kRandomOffset = 11;         // in the single-record form
constexpr std::size_t kRandomSize = 32;
constexpr std::size_t kMaxSessionId = 32;

bool is_grease(std::uint16_t v) noexcept { return (v & 0x0f0f) == 0x0a0a; }

// Bounds-checked big-endian reader over a span; a failed read sets ok = false
// and leaves everything after it returning zeros.
struct Reader {
  ByteSpan s;
  std::size_t pos = 0;
  bool ok = true;

  bool has(std::size_t n) const noexcept { return ok && s.size() - pos >= n; }
  std::size_t left() const noexcept { return ok ? s.size() - pos : 0; }
  std::uint32_t u8() noexcept {
    if (!has(1)) {
      ok = false;
      return 0;
    }
    return std::to_integer<std::uint32_t>(s[pos++]);
  }
  std::uint32_t u16() noexcept {
    if (!has(2)) {
      ok = false;
      return 0;
    }
    pos += 2;
    return load_be16(s.data() + pos - 2);
  }
  ByteSpan take(std::size_t n) noexcept {
    if (!has(n)) {
      ok = false;
      return {};
    }
    pos += n;
    return s.subspan(pos - n, n);
  }
};

// SNI extension body: u16 list length, then (u8 type, u16 len, name)*.
std::optional<std::string> parse_sni(ByteSpan ext) {
  Reader r{ext};
  Reader list{r.take(r.u16())};
  while (list.ok && list.left() > 0) {
    std::uint32_t type = list.u8();
    ByteSpan name = list.take(list.u16());
    if (list.ok && type == 0 && !name.empty()) {
      return std::string(reinterpret_cast<const char*>(name.data()), name.size());
    }
  }
  return std::nullopt;
}

// Fills the fields after the random from the single-record form `rec`.
Result<void> parse_hello_body(ByteSpan rec, ClientHello& out) {
  Reader r{rec, kRandomOffset + kRandomSize};
  std::size_t sid_len = r.u8();
  ByteSpan sid = r.take(sid_len);
  if (!r.ok || sid_len > kMaxSessionId) return base::fail(Errc::kBadInput, "tls: bad session id");
  std::copy(sid.begin(), sid.end(), out.session_id.begin());
  out.session_id_len = sid_len;

  std::size_t suites_len = r.u16();
  Reader suites{r.take(suites_len)};
  if (!r.ok || suites_len == 0 || suites_len % 2 != 0) {
    return base::fail(Errc::kBadInput, "tls: bad cipher suite list");
  }
  bool found = false;
  while (suites.left() > 0 && !found) {
    auto v = static_cast<std::uint16_t>(suites.u16());
    found = !is_grease(v);
    if (found) out.cipher_suite = v;
  }
  if (!found) return base::fail(Errc::kBadInput, "tls: only GREASE cipher suites");

  std::size_t comp_len = r.u8();
  r.take(comp_len);
  if (!r.ok || comp_len == 0) return base::fail(Errc::kBadInput, "tls: bad compression list");
  if (r.left() == 0) return {};  // no extensions: legal, just no SNI

  Reader exts{r.take(r.u16())};
  if (!r.ok) return base::fail(Errc::kBadInput, "tls: extensions overrun the hello");
  while (exts.ok && exts.left() > 0) {
    std::uint32_t type = exts.u16();
    ByteSpan body = exts.take(exts.u16());
    if (exts.ok && type == 0x0000 && !out.sni) out.sni = parse_sni(body);
  }
  if (!exts.ok) return base::fail(Errc::kBadInput, "tls: truncated extension");
  return {};
}

}  // namespace

Result<HelloScan> scan_client_hello(ByteSpan in) {
  std::size_t pos = 0;       // start of the current record header in `in`
  std::size_t payload = 0;   // handshake bytes in complete-or-started records so far
  std::size_t hs_total = 0;  // 4 + u24 handshake length, once known
  std::array<std::byte, 4> hs{};
  for (std::size_t fragments = 0;; ++fragments) {
    // Reaching here means the hello is not complete yet and needs a record.
    if (fragments == kMaxClientHelloFragments) {
      return base::fail(Errc::kBadInput, "tls: ClientHello in too many fragments");
    }
    const std::size_t avail = in.size() - pos;
    for (std::size_t i = 0; i < std::min<std::size_t>(avail, 3); ++i) {
      if (in[pos + i] != kHandshakeRecord[i]) {
        return base::fail(Errc::kBadInput, "tls: not a TLS 1.0 handshake record");
      }
    }
    const std::size_t remaining = hs_total ? hs_total - payload : 0;
    if (avail < kTlsHeaderSize) return HelloScan{false, pos + kTlsHeaderSize + remaining};

    const std::size_t len = load_be16(in.data() + pos + 3);
    const std::size_t body = pos + kTlsHeaderSize;
    if (len == 0 || len > kMaxRecordPayload || payload + len > kMaxClientHelloBytes) {
      return base::fail(Errc::kBadInput, "tls: bad ClientHello record length");
    }
    // The 4-byte handshake header may itself be split across records.
    const std::size_t here = std::min(len, in.size() - body);
    for (std::size_t k = 0; k < here && payload + k < 4; ++k) {
      hs[payload + k] = in[body + k];
      if (payload + k == 0 && hs[0] != kClientHelloType) {
        return base::fail(Errc::kBadInput, "tls: handshake is not a ClientHello");
      }
      if (payload + k == 3) {
        hs_total = 4 + load_be24(hs.data() + 1);
        if (hs_total < kMinClientHelloRecord || hs_total > kMaxClientHelloBytes) {
          return base::fail(Errc::kBadInput, "tls: ClientHello length out of range");
        }
      }
    }
    payload += len;
    if (hs_total != 0 && payload > hs_total) {
      return base::fail(Errc::kBadInput, "tls: record runs past the ClientHello");
    }
    pos = body + len;
    if (here < len) {
      const std::size_t after = hs_total ? hs_total - payload : 0;  // in later fragments
      return HelloScan{false, pos + (after ? kTlsHeaderSize + after : 0)};
    }
    if (hs_total != 0 && payload == hs_total) return HelloScan{true, pos};
  }
}

Result<ClientHello> parse_client_hello(ByteSpan in) {
  auto scan = scan_client_hello(in);
  if (!scan) return tl::unexpected(std::move(scan.error()));
  if (!scan->complete) return base::fail(Errc::kShortInput, "tls: ClientHello incomplete");

  ClientHello out;
  out.consumed = scan->needed;
  // Rebuild as one record, as mtg does: the HMAC covers this form.
  Bytes& rec = out.hmac_input;
  rec.reserve(kTlsHeaderSize + kMaxRecordPayload);
  rec.assign(kHandshakeRecord, kHandshakeRecord + 3);
  rec.resize(kTlsHeaderSize);
  for (std::size_t pos = 0; pos < out.consumed;) {
    const std::size_t len = load_be16(in.data() + pos + 3);
    const auto* p = in.data() + pos + kTlsHeaderSize;
    rec.insert(rec.end(), p, p + len);
    pos += kTlsHeaderSize + len;
  }
  store_be16(rec.data() + 3, static_cast<std::uint16_t>(rec.size() - kTlsHeaderSize));
  if (rec.size() < kRandomOffset + kRandomSize + 1) {
    return base::fail(Errc::kBadInput, "tls: ClientHello too short");
  }
  std::copy_n(rec.begin() + kRandomOffset, kRandomSize, out.random.begin());
  std::fill_n(rec.begin() + kRandomOffset, kRandomSize, std::byte{0});

  auto body = parse_hello_body(rec, out);
  if (!body) return tl::unexpected(std::move(body.error()));
  return out;
}

std::optional<std::uint32_t> client_hello_timestamp(const ClientHello& hello,
                                                    const SecretKey& key) {
  return client_hello_timestamp(hello, HmacSha256Key(key));
}

std::optional<std::uint32_t> client_hello_timestamp(const ClientHello& hello,
                                                    const HmacSha256Key& key) {
  if (hello.hmac_input.size() < kRandomOffset + kRandomSize) return std::nullopt;
  const Sha256Digest d = key.mac({hello.hmac_input});
  unsigned diff = 0;
  for (std::size_t i = 0; i < 28; ++i) diff |= std::to_integer<unsigned>(d[i] ^ hello.random[i]);
  if (diff != 0) return std::nullopt;
  std::array<std::byte, 4> ts{};
  for (std::size_t i = 0; i < 4; ++i) ts[i] = d[28 + i] ^ hello.random[28 + i];
  return load_le32(ts.data());
}

bool timestamp_in_window(std::uint32_t ts, const ClockWindow& clock) noexcept {
  if (clock.accept_below > 0 && static_cast<std::int64_t>(ts) < clock.accept_below) return true;
  const std::int64_t diff = clock.now - static_cast<std::int64_t>(ts);
  return diff <= clock.max_skew_seconds && -diff <= clock.max_skew_seconds;
}

Result<std::uint32_t> validate_client_hello(const ClientHello& hello, const SecretKey& key,
                                            const ClockWindow& clock) {
  auto ts = client_hello_timestamp(hello, key);
  if (!ts) return base::fail(Errc::kBadHandshake, "tls: HMAC mismatch");
  if (!timestamp_in_window(*ts, clock)) {
    return base::fail(Errc::kClockSkew, "tls: timestamp outside the window");
  }
  return *ts;
}

Result<void> check_sni(const ClientHello& hello, std::string_view domain) {
  if (!hello.sni) return base::fail(Errc::kWrongSni, "tls: no SNI");
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
  const std::string& sni = *hello.sni;
  const bool same = sni.size() == domain.size() &&
                    std::equal(sni.begin(), sni.end(), domain.begin(),
                               [&](char a, char b) { return lower(a) == lower(b); });
  if (!same) return base::fail(Errc::kWrongSni, "tls: SNI does not match the domain");
  return {};
}

}  // namespace mtw::proto
