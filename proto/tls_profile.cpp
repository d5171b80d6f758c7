// The mask profile: first-flight parser, merge, text form, built-in
// fallback (see tls_profile.h). The answer builder lives with the other one
// in fake_tls_server.cpp.
#include "proto/tls_profile.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>

namespace mtw::proto {
namespace {

using base::fail;

constexpr std::uint8_t kTypeCcs = 0x14;
constexpr std::uint8_t kTypeAlert = 0x15;
constexpr std::uint8_t kTypeHandshake = 0x16;
constexpr std::uint8_t kTypeAppData = 0x17;
// RFC 8446 §4.1.3: a ServerHello with this random is a HelloRetryRequest.
constexpr std::uint8_t kHrrRandom[32] = {
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c};

std::uint8_t u8(ByteSpan b, std::size_t i) { return static_cast<std::uint8_t>(b[i]); }

// ServerHello handshake message (type, u24 length, body) -> fields.
Result<void> parse_server_hello_body(ByteSpan msg, ServerFlight& f) {
  auto bad = [](const char* why) { return fail(Errc::kBadInput, std::string("mask: ") + why); };
  if (msg.size() < 4 || u8(msg, 0) != 0x02) return bad("first handshake is not a ServerHello");
  const std::size_t len = (std::size_t{u8(msg, 1)} << 16) | load_be16(msg.data() + 2);
  if (len + 4 != msg.size()) return bad("ServerHello does not fill its record");
  ByteSpan b = msg.subspan(4);
  if (b.size() < 2 + 32 + 1) return bad("ServerHello too short");
  f.legacy_version = load_be16(b.data());
  if (std::equal(b.begin() + 2, b.begin() + 34, reinterpret_cast<const std::byte*>(kHrrRandom))) {
    return bad("HelloRetryRequest");
  }
  const std::size_t sid_len = u8(b, 34);
  if (sid_len > 32 || b.size() < 35 + sid_len + 2 + 1 + 2) return bad("ServerHello session id");
  f.session_id.assign(b.begin() + 35, b.begin() + 35 + sid_len);
  std::size_t p = 35 + sid_len;
  f.cipher_suite = load_be16(b.data() + p);
  if (u8(b, p + 2) != 0) return bad("ServerHello compression");
  const std::size_t ext_len = load_be16(b.data() + p + 3);
  p += 5;
  if (p + ext_len != b.size()) return bad("ServerHello extensions length");
  bool tls13 = false;
  bool have_key_share = false;
  while (p < b.size()) {
    if (b.size() - p < 4) return bad("truncated extension");
    TlsExtension e;
    e.type = load_be16(b.data() + p);
    const std::size_t n = load_be16(b.data() + p + 2);
    if (b.size() - p - 4 < n) return bad("truncated extension");
    e.body.assign(b.begin() + p + 4, b.begin() + p + 4 + n);
    p += 4 + n;
    for (const TlsExtension& seen : f.extensions) {
      if (seen.type == e.type) return bad("duplicate extension");
    }
    if (f.extensions.size() == kMaxProfileExtensions) return bad("too many extensions");
    if (e.type == kExtSupportedVersions) {
      tls13 = n == 2 && u8(e.body, 0) == 0x03 && u8(e.body, 1) == 0x04;
    } else if (e.type == kExtKeyShare) {
      if (n < 4 || load_be16(e.body.data() + 2) != n - 4) return bad("key_share length");
      f.key_share_group = load_be16(e.body.data());
      f.key_share_len = n - 4;
      have_key_share = true;
    }
    f.extensions.push_back(std::move(e));
  }
  if (!tls13) return bad("server did not choose TLS 1.3");
  if (!have_key_share) return bad("ServerHello without key_share");
  return {};
}

// "0303" <-> 0x0303; "-" <-> empty bytes.
std::string hex16(std::uint16_t v) {
  const std::byte b[2] = {std::byte(v >> 8), std::byte(v & 0xff)};
  return to_hex(b);
}

Result<std::uint64_t> parse_dec(std::string_view s, std::uint64_t max) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v > max) {
    return fail(Errc::kBadInput, "bad number '" + std::string(s) + "'");
  }
  return v;
}

Result<std::uint16_t> parse_hex16(std::string_view s) {
  if (s.size() != 4)
    return fail(Errc::kBadInput, "expected 4 hex digits: '" + std::string(s) + "'");
  auto b = from_hex(s);
  if (!b) return fail(Errc::kBadInput, "expected 4 hex digits: '" + std::string(s) + "'");
  return load_be16(b->data());
}

std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    const std::size_t j = std::min(line.find(' ', i), line.size());
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

bool valid_domain(std::string_view d) {
  if (d.empty() || d.size() > 253) return false;
  return std::all_of(d.begin(), d.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
  });
}

// Derives key_share_group/len from the extension list; false without a
// well-formed one.
bool derive_key_share(TlsProfile& p) {
  int found = 0;
  for (const TlsExtension& e : p.extensions) {
    if (e.type != kExtKeyShare) continue;
    if (e.body.size() != 4) return false;
    p.key_share_group = load_be16(e.body.data());
    p.key_share_len = load_be16(e.body.data() + 2);
    ++found;
  }
  if (found != 1 || p.key_share_len == 0) return false;
  std::size_t total = 0;
  for (const TlsExtension& e : p.extensions) {
    total += 4 + (e.type == kExtKeyShare ? 4 + p.key_share_len : e.body.size());
  }
  return total <= kMaxProfileExtensionBytes;
}

constexpr std::string_view kCloseNames[] = {"unknown", "fin", "rst", "open"};

std::string format_close(const CloseBehaviour& c) {
  return std::string(kCloseNames[static_cast<int>(c.kind)]) + " " + std::to_string(c.after_ms) +
         " " + std::to_string(c.reply_len) + " " +
         (c.reply_head.empty() ? std::string("-") : to_hex(c.reply_head));
}

// "<kind> <ms> <reply_len> <head hex|->"; the head is the reply's first
// min(reply_len, 16) bytes.
Result<CloseBehaviour> parse_close(std::span<const std::string_view> w) {
  auto bad = [](const char* why) { return fail(Errc::kBadInput, why); };
  if (w.size() != 4) return bad("kind ms reply_len head");
  CloseBehaviour c;
  const auto* it = std::find(std::begin(kCloseNames), std::end(kCloseNames), w[0]);
  if (it == std::end(kCloseNames)) return bad("kind: unknown|fin|rst|open");
  c.kind = static_cast<CloseKind>(it - std::begin(kCloseNames));
  auto ms = parse_dec(w[1], 3'600'000);
  auto len = parse_dec(w[2], std::uint64_t{1} << 32);
  if (!ms || !len) return bad("bad number");
  c.after_ms = static_cast<std::uint32_t>(*ms);
  c.reply_len = *len;
  if (w[3] != "-") {
    auto head = from_hex(w[3]);
    if (!head || head->empty()) return bad("head is not hex");
    c.reply_head = std::move(*head);
  }
  if (c.reply_head.size() != std::min(c.reply_len, kMaxReplyHead)) return bad("head length");
  if (c.kind == CloseKind::kUnknown && (c.after_ms != 0 || c.reply_len != 0)) {
    return bad("unknown carries no values");
  }
  return c;
}

}  // namespace

Result<ServerFlight> parse_server_flight(ByteSpan in) {
  auto bad = [](const char* why) { return fail(Errc::kBadInput, std::string("mask: ") + why); };
  ServerFlight f;
  std::size_t pos = 0;
  bool first = true;
  while (in.size() - pos >= kTlsHeaderSize) {
    const std::uint8_t type = u8(in, pos);
    const std::size_t n = load_be16(in.data() + pos + 3);
    if (u8(in, pos + 1) != 0x03) return bad("record version is not 03 xx");
    if (n > kMaxTlsRecordPayload) return bad("record over 16640 bytes");
    if (type == kTypeAlert) return bad("server sent an alert");
    if (first && type != kTypeHandshake) return bad("first record is not a handshake");
    if (in.size() - pos - kTlsHeaderSize < n) break;  // partial record: ignored
    const ByteSpan payload = in.subspan(pos + kTlsHeaderSize, n);
    if (first) {
      f.record_version = load_be16(in.data() + pos + 1);
      if (auto r = parse_server_hello_body(payload, f); !r) return tl::unexpected(r.error());
      first = false;
    } else if (type == kTypeCcs) {
      ++f.ccs_count;
    } else if (type == kTypeAppData) {
      if (f.encrypted_records.size() == kMaxProfileRecords) return bad("too many records");
      f.encrypted_records.push_back(n);
    } else {
      return bad("unexpected record type after ServerHello");
    }
    pos += kTlsHeaderSize + n;
    f.consumed = pos;
  }
  if (first) return fail(Errc::kShortInput, "mask: ServerHello incomplete");
  return f;
}

RecordRange flight_wire_range(const TlsProfile& p) noexcept {
  RecordRange r;
  for (const RecordRange& rec : p.encrypted_records) {
    r.min += kTlsHeaderSize + rec.min;
    r.max += kTlsHeaderSize + rec.max;
  }
  return r;
}

Result<TlsProfile> profile_from_flights(std::span<const FlightSample> samples,
                                        std::string_view domain, std::int64_t measured_at) {
  auto bad = [](const char* why) { return fail(Errc::kBadInput, std::string("mask: ") + why); };
  if (samples.empty()) return bad("no samples");
  if (samples.size() > kMaxProfileSamples) return bad("too many samples");
  // The most common record count (ties: the smaller).
  std::map<std::size_t, std::size_t> counts;
  for (const FlightSample& s : samples) ++counts[s.flight.encrypted_records.size()];
  const auto modal = std::max_element(counts.begin(), counts.end(), [](auto& a, auto& b) {
                       return a.second < b.second;
                     })->first;
  if (modal == 0) return bad("first flight has no encrypted records");

  const ServerFlight& ref = samples.front().flight;
  auto head_of = [](const ServerFlight& f) {
    std::vector<TlsExtension> exts = f.extensions;
    for (TlsExtension& e : exts) {
      if (e.type == kExtKeyShare) e.body.resize(4);  // group + key length; the key differs
    }
    return exts;
  };
  auto echoes = [](const FlightSample& s) {
    return !s.flight.session_id.empty() && s.flight.session_id == s.client_session_id;
  };

  TlsProfile p;
  p.source = ProfileSource::kMeasured;
  p.measured_at = measured_at;
  p.domain = std::string(domain);
  p.legacy_version = ref.legacy_version;
  p.cipher_suite = ref.cipher_suite;
  p.session_id_echo = echoes(samples.front());
  p.extensions = head_of(ref);
  if (!derive_key_share(p)) return bad("ServerHello extensions over 4096 bytes");
  p.ccs_count = ref.ccs_count;
  std::vector<std::uint32_t> latencies;
  for (const FlightSample& s : samples) {
    if (s.answer_us != 0) p.answer_us.push_back(s.answer_us);
    const ServerFlight& f = s.flight;
    if (f.legacy_version != p.legacy_version || f.cipher_suite != p.cipher_suite ||
        echoes(s) != p.session_id_echo || head_of(f) != p.extensions ||
        f.ccs_count != p.ccs_count) {
      return bad("ServerHello differs between handshakes");
    }
    latencies.push_back(s.latency_ms);
    if (f.encrypted_records.size() != modal) continue;
    if (p.encrypted_records.empty()) p.encrypted_records.resize(modal, {SIZE_MAX, 0});
    for (std::size_t i = 0; i < modal; ++i) {
      p.encrypted_records[i].min = std::min(p.encrypted_records[i].min, f.encrypted_records[i]);
      p.encrypted_records[i].max = std::max(p.encrypted_records[i].max, f.encrypted_records[i]);
    }
    ++p.samples;
  }
  std::sort(latencies.begin(), latencies.end());
  std::sort(p.answer_us.begin(), p.answer_us.end());
  p.handshake_latency = {latencies.front(), latencies[latencies.size() / 2], latencies.back()};
  return p;
}

std::string format_profile(const TlsProfile& p) {
  std::string out = "mtw-tls-profile 1\n";
  out += "source ";
  out += p.source == ProfileSource::kMeasured ? "measured" : "builtin";
  out += "\nmeasured_at " + std::to_string(p.measured_at);
  out += "\ndomain " + (p.domain.empty() ? std::string("-") : p.domain);
  out += "\nsamples " + std::to_string(p.samples);
  out += "\nlegacy_version " + hex16(p.legacy_version);
  out += "\ncipher " + hex16(p.cipher_suite);
  out += std::string("\nsession_id_echo ") + (p.session_id_echo ? "yes" : "no");
  for (const TlsExtension& e : p.extensions) {
    out += "\next " + hex16(e.type) + " " + (e.body.empty() ? std::string("-") : to_hex(e.body));
  }
  out += "\nccs " + std::to_string(p.ccs_count);
  out += "\nflight";
  // Appended piece by piece: GCC 12 -O3 warns (-Wrestrict, falsely) on
  // " " + std::string here.
  for (const RecordRange& r : p.encrypted_records) {
    out += ' ';
    out += std::to_string(r.min);
    if (r.max != r.min) {
      out += '-';
      out += std::to_string(r.max);
    }
  }
  out += "\nlatency_ms " + std::to_string(p.handshake_latency.min_ms) + " " +
         std::to_string(p.handshake_latency.median_ms) + " " +
         std::to_string(p.handshake_latency.max_ms);
  out += "\nresponse";
  if (p.response_records.empty()) out += " -";
  for (std::size_t n : p.response_records) {
    out += ' ';
    out += std::to_string(n);
  }
  if (!p.answer_us.empty()) {  // optional: profiles written before it parse
    out += "\nanswer_us";
    for (std::uint32_t n : p.answer_us) {
      out += ' ';
      out += std::to_string(n);
    }
  }
  out += "\nidle_close " + format_close(p.idle_close);
  out += "\nbad_close " + format_close(p.bad_close);
  out += "\n";
  return out;
}

Result<TlsProfile> parse_profile(std::string_view text) {
  TlsProfile p;
  p.extensions.clear();
  std::map<std::string, int, std::less<>> seen;
  std::size_t line_no = 0;
  bool header = false;
  auto err = [&](const std::string& why) {
    return fail(Errc::kBadInput, "tls profile line " + std::to_string(line_no) + ": " + why);
  };
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    if (line.empty()) continue;
    const auto w = split_words(line);
    if (w.empty()) return err("blank line with spaces");
    const std::string_view key = w[0];
    if (!header) {
      if (w.size() != 2 || key != "mtw-tls-profile" || w[1] != "1") {
        return err("expected 'mtw-tls-profile 1'");
      }
      header = true;
      continue;
    }
    if (key != "ext" && seen[std::string(key)]++ > 0)
      return err("duplicate key " + std::string(key));
    auto want = [&](std::size_t n) { return w.size() == n + 1; };
    if (key == "source") {
      if (!want(1) || (w[1] != "measured" && w[1] != "builtin"))
        return err("source: measured|builtin");
      p.source = w[1] == "measured" ? ProfileSource::kMeasured : ProfileSource::kBuiltin;
    } else if (key == "measured_at") {
      if (!want(1)) return err("measured_at: one number");
      auto v = parse_dec(w[1], std::uint64_t{1} << 40);
      if (!v) return err(v.error().context);
      p.measured_at = static_cast<std::int64_t>(*v);
    } else if (key == "domain") {
      if (!want(1)) return err("domain: one word");
      if (w[1] != "-" && !valid_domain(w[1])) return err("domain: bad characters");
      p.domain = w[1] == "-" ? std::string() : std::string(w[1]);
    } else if (key == "samples") {
      auto v = want(1) ? parse_dec(w[1], kMaxProfileSamples) : parse_dec("", 0);
      if (!v) return err("samples: " + v.error().context);
      p.samples = *v;
    } else if (key == "legacy_version" || key == "cipher") {
      auto v = want(1) ? parse_hex16(w[1]) : parse_hex16("");
      if (!v) return err(std::string(key) + ": " + v.error().context);
      (key == "cipher" ? p.cipher_suite : p.legacy_version) = *v;
    } else if (key == "session_id_echo") {
      if (!want(1) || (w[1] != "yes" && w[1] != "no")) return err("session_id_echo: yes|no");
      p.session_id_echo = w[1] == "yes";
    } else if (key == "ext") {
      if (!want(2)) return err("ext: type and body");
      auto type = parse_hex16(w[1]);
      if (!type) return err("ext: " + type.error().context);
      TlsExtension e{*type, {}};
      if (w[2] != "-") {
        auto body = from_hex(w[2]);
        if (!body || body->empty() || body->size() > 0xffff) return err("ext: body is not hex");
        e.body = std::move(*body);
      }
      for (const TlsExtension& x : p.extensions) {
        if (x.type == e.type) return err("ext: duplicate type");
      }
      if (p.extensions.size() == kMaxProfileExtensions) return err("ext: too many");
      p.extensions.push_back(std::move(e));
    } else if (key == "ccs") {
      auto v = want(1) ? parse_dec(w[1], 8) : parse_dec("", 0);
      if (!v) return err("ccs: " + v.error().context);
      p.ccs_count = *v;
    } else if (key == "flight") {
      if (w.size() < 2 || w.size() - 1 > kMaxProfileRecords) return err("flight: 1..32 records");
      for (std::size_t i = 1; i < w.size(); ++i) {
        const std::size_t dash = w[i].find('-');
        auto lo = parse_dec(w[i].substr(0, dash), kMaxTlsRecordPayload);
        auto hi = dash == std::string_view::npos
                      ? lo
                      : parse_dec(w[i].substr(dash + 1), kMaxTlsRecordPayload);
        if (!lo || !hi || *lo > *hi || (dash != std::string_view::npos && *lo == *hi)) {
          return err("flight: bad range '" + std::string(w[i]) + "'");
        }
        p.encrypted_records.push_back({*lo, *hi});
      }
    } else if (key == "latency_ms") {
      if (!want(3)) return err("latency_ms: min median max");
      std::uint32_t v[3];
      for (int i = 0; i < 3; ++i) {
        auto n = parse_dec(w[i + 1], 3'600'000);
        if (!n) return err("latency_ms: " + n.error().context);
        v[i] = static_cast<std::uint32_t>(*n);
      }
      if (v[0] > v[1] || v[1] > v[2]) return err("latency_ms: not min <= median <= max");
      p.handshake_latency = {v[0], v[1], v[2]};
    } else if (key == "response") {
      if (w.size() < 2 || w.size() - 1 > kMaxProfileRecords) return err("response: 1..32 words");
      if (!(w.size() == 2 && w[1] == "-")) {
        for (std::size_t i = 1; i < w.size(); ++i) {
          auto n = parse_dec(w[i], kMaxTlsRecordPayload);
          if (!n) return err("response: " + n.error().context);
          p.response_records.push_back(*n);
        }
      }
    } else if (key == "answer_us") {
      if (w.size() < 2 || w.size() - 1 > kMaxProfileSamples) return err("answer_us: 1..64 numbers");
      for (std::size_t i = 1; i < w.size(); ++i) {
        auto n = parse_dec(w[i], 60'000'000);
        if (!n || *n == 0) return err("answer_us: 1..60000000 microseconds");
        if (!p.answer_us.empty() && *n < p.answer_us.back()) return err("answer_us: not sorted");
        p.answer_us.push_back(static_cast<std::uint32_t>(*n));
      }
    } else if (key == "idle_close" || key == "bad_close") {
      auto c = parse_close(std::span(w).subspan(1));
      if (!c) return err(std::string(key) + ": " + c.error().context);
      (key == "idle_close" ? p.idle_close : p.bad_close) = std::move(*c);
    } else {
      return err("unknown key '" + std::string(key) + "'");
    }
  }
  if (!header) return fail(Errc::kBadInput, "tls profile: empty");
  for (const char* k :
       {"source", "measured_at", "domain", "samples", "legacy_version", "cipher", "session_id_echo",
        "ccs", "flight", "latency_ms", "response", "idle_close", "bad_close"}) {
    if (!seen.count(k)) return fail(Errc::kBadInput, std::string("tls profile: missing ") + k);
  }
  if (!derive_key_share(p)) {
    return fail(
        Errc::kBadInput,
        "tls profile: needs exactly one key_share ext 0033 <group><len>, extensions <= 4096 bytes");
  }
  return p;
}

std::uint32_t draw_answer_delay_us(const TlsProfile& p, RandomSource& rnd) {
  const auto& s = p.answer_us;
  if (s.empty()) return 0;
  if (s.size() == 1) return s.front();
  // u uniform over [0, n-1) in 1/65536 steps: sample floor(u), then the
  // straight line to the next one (a smooth empirical distribution).
  constexpr std::uint32_t kSteps = 65'536;
  const std::uint64_t u = std::uint64_t{rnd.uniform(0, kSteps - 1)} * (s.size() - 1);
  const std::size_t i = static_cast<std::size_t>(u / kSteps);
  const std::uint64_t frac = u % kSteps;
  const std::uint64_t a = s[i], b = s[i + 1];
  return static_cast<std::uint32_t>(a + (b - a) * frac / kSteps);
}

std::size_t relay_record_payload(const TlsProfile& p) noexcept {
  std::size_t largest = 0;
  for (std::size_t n : p.response_records) largest = std::max(largest, n);
  if (largest < 16384) return kTls13FullRecordPayload;  // no full record seen: the usual one
  return std::min(largest, kMaxProfileRecord);
}

const TlsProfile& builtin_profile() {
  // Records of the encrypted flight: EncryptedExtensions with ALPN h2
  // (36), Certificate (leaf + one intermediate: 2.4-4 KB across real
  // sites), CertificateVerify with RSA-PSS 2048 (281), Finished with SHA-256
  // (53). The ServerHello is OpenSSL's: supported_versions before key_share.
  static const TlsProfile p = [] {
    TlsProfile b;
    b.source = ProfileSource::kBuiltin;
    b.legacy_version = 0x0303;
    b.cipher_suite = 0x1301;
    b.session_id_echo = true;
    b.extensions = {
        {kExtSupportedVersions, {std::byte{0x03}, std::byte{0x04}}},
        {kExtKeyShare, {std::byte{0x00}, std::byte{0x1d}, std::byte{0x00}, std::byte{0x20}}}};
    b.key_share_group = kGroupX25519;
    b.key_share_len = 32;
    b.ccs_count = 1;
    b.encrypted_records = {{36, 36}, {2400, 4000}, {281, 281}, {53, 53}};
    b.handshake_latency = {0, 0, 0};
    // nginx's client_header_timeout (60 s) also bounds the TLS handshake;
    // a malformed ClientHello gets OpenSSL's alert (unexpected_message) and a FIN.
    b.idle_close = {CloseKind::kFin, 60'000, 0, {}};
    b.bad_close = {CloseKind::kFin, 0, 7, *from_hex("1503030002020a")};
    return b;
  }();
  return p;
}

std::string format_profile_bundle(std::span<const TlsProfile> profiles) {
  std::string out;
  for (const auto& p : profiles) out += format_profile(p);
  return out;
}

Result<std::vector<TlsProfile>> parse_profile_bundle(std::string_view text) {
  static constexpr std::string_view kHeader = "mtw-tls-profile 1\n";
  std::vector<TlsProfile> out;
  std::set<std::string> domains;
  if (!text.empty() && !text.starts_with(kHeader))
    return fail(Errc::kBadInput, "profile bundle: text before the first 'mtw-tls-profile 1'");
  while (!text.empty()) {
    // The next profile starts at the next header at the start of a line.
    std::size_t next = text.find(std::string("\n").append(kHeader), 1);
    next = next == std::string_view::npos ? text.size() : next + 1;
    if (out.size() == kMaxBundleProfiles)
      return fail(Errc::kTooLarge,
                  "profile bundle: more than " + std::to_string(kMaxBundleProfiles) + " profiles");
    const std::string which = "profile bundle: profile " + std::to_string(out.size() + 1) + ": ";
    auto p = parse_profile(text.substr(0, next));
    if (!p) return fail(Errc::kBadInput, which + p.error().context);
    std::string key = p->domain;
    std::transform(key.begin(), key.end(), key.begin(),
                   [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; });
    if (key.empty()) return fail(Errc::kBadInput, which + "no domain");
    if (!domains.insert(key).second)
      return fail(Errc::kBadInput, which + "domain " + key + " given twice");
    out.push_back(*std::move(p));
    text.remove_prefix(next);
  }
  return out;
}

}  // namespace mtw::proto
