// User identification for the gate (issue 3, item 6).
#include "proto/identify.h"

#include <algorithm>
#include <array>

namespace mtw::proto {
namespace {

char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
  return out;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return ascii_lower(x) == ascii_lower(y);
         });
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// 16 03 01 as far as the bytes go: a fake-TLS ClientHello may follow.
bool starts_like_tls(ByteSpan in) noexcept {
  return in[0] == std::byte{0x16} && (in.size() < 2 || in[1] == std::byte{0x03}) &&
         (in.size() < 3 || in[2] == std::byte{0x01});
}

// Plain protocols a client's obfuscated2 init never starts with (protocol.md
// §2 client rules): HTTP verbs, the HTTP/2 preface, unobfuscated transports.
bool plainly_not_obfs2(ByteSpan in) noexcept {
  static constexpr std::array<std::string_view, 10> kPrefixes = {
      "GET ", "POST", "HEAD", "PUT ", "OPTI", "DELE", "CONN", "PATC", "TRAC", "PRI "};
  if (in.size() < 4) return false;
  const std::string_view head(reinterpret_cast<const char*>(in.data()), 4);
  if (std::find(kPrefixes.begin(), kPrefixes.end(), head) != kPrefixes.end()) return true;
  const std::uint32_t v = load_le32(in.data());
  return in[0] == std::byte{0xef} || v == 0xdddddddd || v == 0xeeeeeeee;
}

Identification rejected(Rejection r, std::size_t needed = 0) {
  Identification out;
  out.rejection = r;
  out.needed = needed;
  return out;
}

bool tag_allowed(ProtoTag tag, const AllowedProtocols& a) noexcept {
  switch (tag) {
    case ProtoTag::kAbridged:
      return a.abridged;
    case ProtoTag::kIntermediate:
      return a.intermediate;
    case ProtoTag::kPadded:
      return a.padded;
  }
  return false;
}

Identification identify_tls(ClientHello hello, const UserIndex& index, ReplayCache& replay,
                            const IdentifyOptions& opts) {
  if (!opts.allowed.fake_tls) return rejected(Rejection::kProtocolNotAllowed);
  const auto& secrets = index.secrets();
  Identification out;
  out.fake_tls = true;
  out.consumed = hello.consumed;

  std::optional<std::size_t> match;
  if (const auto* candidates = hello.sni ? index.by_domain(*hello.sni) : nullptr) {
    for (std::size_t i : *candidates) {
      if (auto ts = client_hello_timestamp(hello, index.hmac_key(i))) {
        match = i, out.tls_timestamp = *ts;
        break;
      }
    }
  }
  if (!match && opts.try_all_on_sni_miss) {
    // Slow path: is it one of ours with another (or no) SNI? Then it is a
    // wrong-SNI hello rather than a stranger's.
    for (std::size_t i = 0; i < secrets.size() && !match; ++i) {
      const Secret& s = secrets[i].secret;
      if (s.kind != SecretKind::kFakeTls || (hello.sni && iequals(*hello.sni, s.domain))) continue;
      if (auto ts = client_hello_timestamp(hello, index.hmac_key(i))) {
        match = i, out.tls_timestamp = *ts;
        out.rejection = Rejection::kWrongSni;
      }
    }
  }
  if (!match) return rejected(Rejection::kBadHmac);
  out.secret_index = *match;
  out.user = secrets[*match].user;
  if (out.rejection != Rejection::kNone) return out;
  if (!timestamp_in_window(out.tls_timestamp, opts.clock)) {
    out.rejection = Rejection::kClockSkew;
    return out;
  }
  if (replay.check_and_insert(hello.random, opts.clock.now)) {
    out.rejection = Rejection::kReplay;
    return out;
  }
  out.hello = std::move(hello);
  return out;
}

Identification identify_obfs2(std::span<const std::byte, kInitSize> init, bool tls_shaped,
                              const UserIndex& index, ReplayCache& replay,
                              const IdentifyOptions& opts) {
  const auto& secrets = index.secrets();
  std::optional<Identification> disallowed;
  for (std::size_t i = 0; i < secrets.size(); ++i) {
    const Secret& s = secrets[i].secret;
    if (s.kind == SecretKind::kFakeTls) continue;  // ee secrets speak fake TLS only
    // Cheap check first (no allocation); full key derivation only on a match.
    if (!is_known_tag(peek_client_init(init, s.key).tag)) continue;
    auto parsed = parse_client_init(init, s.key);
    if (!parsed) continue;  // unreachable: same tag as the peek
    Identification out;
    out.secret_index = i;
    out.user = secrets[i].user;
    out.consumed = kInitSize;
    const bool kind_ok = s.kind == SecretKind::kSimple || parsed->tag == ProtoTag::kPadded;
    if (!kind_ok || !tag_allowed(parsed->tag, opts.allowed)) {
      out.rejection = Rejection::kProtocolNotAllowed;
      if (!disallowed) disallowed = std::move(out);
      continue;
    }
    if (replay.check_and_insert(init.subspan(8, 48), opts.clock.now)) {
      out.rejection = Rejection::kReplay;
      return out;
    }
    out.init = *parsed;
    return out;
  }
  if (disallowed) return *std::move(disallowed);
  return rejected(tls_shaped ? Rejection::kNotMtproxy : Rejection::kUnknownTag);
}

}  // namespace

Result<AllowedProtocols> parse_allowed_protocols(std::string_view text) {
  text = trim(text);
  if (iequals(text, "all")) return AllowedProtocols{};
  AllowedProtocols a{false, false, false, false};
  while (true) {
    const std::size_t comma = text.find(',');
    const std::string_view item = trim(text.substr(0, comma));
    if (iequals(item, "abridged")) {
      a.abridged = true;
    } else if (iequals(item, "intermediate")) {
      a.intermediate = true;
    } else if (iequals(item, "secure") || iequals(item, "padded")) {
      a.padded = true;
    } else if (iequals(item, "tls")) {
      a.fake_tls = true;
    } else {
      return base::fail(Errc::kBadInput,
                        "allowed protocols: expected all or a comma list of "
                        "abridged, intermediate, secure, tls; got '" +
                            std::string(item) + "'");
    }
    if (comma == std::string_view::npos) return a;
    text.remove_prefix(comma + 1);
  }
}

UserIndex::UserIndex(std::vector<UserSecret> secrets) : secrets_(std::move(secrets)) {
  hmac_keys_.reserve(secrets_.size());
  for (std::size_t i = 0; i < secrets_.size(); ++i) {
    const Secret& s = secrets_[i].secret;
    // Only fake-TLS secrets are HMAC'd; the others get an unused empty key so
    // the vectors stay parallel.
    hmac_keys_.push_back(s.kind == SecretKind::kFakeTls ? HmacSha256Key(s.key) : HmacSha256Key());
    if (s.kind != SecretKind::kFakeTls) continue;
    domains_[lower(s.domain)].push_back(i);
    ++fake_tls_count_;
  }
}

const std::vector<std::size_t>* UserIndex::by_domain(std::string_view domain) const {
  auto it = domains_.find(lower(domain));
  return it == domains_.end() ? nullptr : &it->second;
}

std::string_view rejection_name(Rejection r) noexcept {
  switch (r) {
    case Rejection::kNone:
      return "none";
    case Rejection::kNeedMore:
      return "need_more";
    case Rejection::kNotMtproxy:
      return "not_mtproxy";
    case Rejection::kBadHmac:
      return "bad_hmac";
    case Rejection::kClockSkew:
      return "clock_skew";
    case Rejection::kReplay:
      return "replay";
    case Rejection::kWrongSni:
      return "wrong_sni";
    case Rejection::kUnknownTag:
      return "unknown_tag";
    case Rejection::kProtocolNotAllowed:
      return "protocol_not_allowed";
  }
  return "unknown";
}

Identification identify(ByteSpan first_bytes, const UserIndex& index, ReplayCache& replay,
                        const IdentifyOptions& opts) {
  if (first_bytes.empty()) return rejected(Rejection::kNeedMore);
  const bool tls_shaped = starts_like_tls(first_bytes);
  if (tls_shaped) {
    auto scan = scan_client_hello(first_bytes);
    if (scan && !scan->complete) return rejected(Rejection::kNeedMore, scan->needed);
    if (scan) {
      auto hello = parse_client_hello(first_bytes);
      if (!hello) return rejected(Rejection::kNotMtproxy);
      return identify_tls(*std::move(hello), index, replay, opts);
    }
    // Not a ClientHello after all: maybe an obfuscated2 init that happens to
    // start with 16 03 01 (clients only avoid 16 03 01 02).
  }
  if (plainly_not_obfs2(first_bytes)) return rejected(Rejection::kNotMtproxy);
  // Only fake TLS allowed: bytes that cannot begin a ClientHello decide at
  // once, so a probe (an SSH banner, 16 random bytes) is masked the moment
  // it arrives instead of waiting for 64 bytes that may never come.
  const AllowedProtocols& a = opts.allowed;
  if (!a.abridged && !a.intermediate && !a.padded) return rejected(Rejection::kProtocolNotAllowed);
  if (first_bytes.size() < kInitSize) return rejected(Rejection::kNeedMore, kInitSize);
  return identify_obfs2(first_bytes.first<kInitSize>(), tls_shaped, index, replay, opts);
}

}  // namespace mtw::proto
