#include "proto/socks.h"

#include <arpa/inet.h>

#include <algorithm>

namespace mtw::proto::socks {
namespace {

using base::fail;

constexpr std::uint8_t kSocks4Version = 4;
constexpr std::uint8_t kSocks5Version = 5;
constexpr std::uint8_t kAuthVersion = 1;  // RFC 1929
constexpr std::uint8_t kCmdConnect = 1;
constexpr std::uint8_t kAtypIpv4 = 1;
constexpr std::uint8_t kAtypName = 3;
constexpr std::uint8_t kAtypIpv6 = 4;
constexpr std::uint8_t kSocks4Granted = 90;

std::uint8_t u8(std::byte b) noexcept { return std::to_integer<std::uint8_t>(b); }

void put(Bytes& out, std::uint8_t v) { out.push_back(std::byte{v}); }
void put_port(Bytes& out, std::uint16_t port) {
  put(out, static_cast<std::uint8_t>(port >> 8));
  put(out, static_cast<std::uint8_t>(port & 0xff));
}
void put_text(Bytes& out, std::string_view s) {
  const auto b = as_bytes(s);
  out.insert(out.end(), b.begin(), b.end());
}

std::string code_text(std::string_view what, std::string_view text, unsigned code) {
  std::string s(what);
  s += ": ";
  s += text;
  s += " (";
  s += std::to_string(code);
  s += ")";
  return s;
}

Result<void> need(ByteSpan in, std::size_t n, const char* what) {
  if (in.size() < n) return fail(Errc::kShortInput, what);
  return {};
}

}  // namespace

Result<Target> make_target(std::string_view host, std::uint16_t port) {
  if (port == 0) return fail(Errc::kBadInput, "socks target: port 0");
  if (host.empty() || host.size() > 255) {
    return fail(Errc::kBadInput, "socks target: host must be 1..255 bytes");
  }
  if (host.find('\0') != std::string_view::npos) {
    return fail(Errc::kBadInput, "socks target: NUL in host");
  }
  Target t;
  t.port = port;
  const std::string text(host);
  if (::inet_pton(AF_INET, text.c_str(), t.ip.data()) == 1) {
    t.kind = Target::Kind::kIpv4;
  } else if (::inet_pton(AF_INET6, text.c_str(), t.ip.data()) == 1) {
    t.kind = Target::Kind::kIpv6;
  } else {
    t.ip = {};
    t.kind = Target::Kind::kName;
    t.name = text;
  }
  return t;
}

Result<Bytes> build_socks4_connect(const Target& target, std::string_view user_id) {
  if (target.kind == Target::Kind::kIpv6) {
    return fail(Errc::kBadInput, "socks4 cannot carry an IPv6 target");
  }
  if (user_id.size() > 255 || user_id.find('\0') != std::string_view::npos) {
    return fail(Errc::kBadInput, "socks4 user id must be at most 255 bytes without NUL");
  }
  Bytes out;
  put(out, kSocks4Version);
  put(out, kCmdConnect);
  put_port(out, target.port);
  if (target.kind == Target::Kind::kIpv4) {
    out.insert(out.end(), target.ip.begin(), target.ip.begin() + 4);
  } else {
    // SOCKS4a: 0.0.0.x with x != 0 says "the name follows the user id".
    for (std::uint8_t b : {0, 0, 0, 1}) put(out, b);
  }
  put_text(out, user_id);
  put(out, 0);
  if (target.kind == Target::Kind::kName) {
    put_text(out, target.name);
    put(out, 0);
  }
  return out;
}

Result<void> parse_socks4_reply(ByteSpan in) {
  if (auto r = need(in, kSocks4ReplySize, "socks4 reply"); !r) return r;
  // VN is 0 in the protocol; some servers echo 4. Anything else is not SOCKS4.
  if (u8(in[0]) != 0 && u8(in[0]) != kSocks4Version) {
    return fail(Errc::kBadInput, "socks4 reply: version byte " + std::to_string(u8(in[0])));
  }
  const std::uint8_t cd = u8(in[1]);
  if (cd == kSocks4Granted) return {};
  if (cd < 91 || cd > 93) {
    return fail(Errc::kBadInput, "socks4 reply: unknown code " + std::to_string(cd));
  }
  return fail(Errc::kBadHandshake, code_text("socks4 connect refused", socks4_reply_text(cd), cd));
}

Bytes build_socks5_greeting(bool with_credentials) {
  return {std::byte{kSocks5Version}, std::byte{1},
          std::byte{with_credentials ? kMethodUserPass : kMethodNone}};
}

Result<std::uint8_t> parse_socks5_method(ByteSpan in, bool with_credentials) {
  if (auto r = need(in, 2, "socks5 method reply"); !r) return tl::unexpected(r.error());
  if (u8(in[0]) != kSocks5Version) {
    return fail(Errc::kBadInput, "socks5 method reply: version byte " + std::to_string(u8(in[0])));
  }
  const std::uint8_t m = u8(in[1]);
  if (m == kMethodNoAcceptable) {
    return fail(Errc::kPermission, with_credentials
                                       ? "socks5: proxy accepts no username/password method"
                                       : "socks5: proxy requires authentication");
  }
  if (m != (with_credentials ? kMethodUserPass : kMethodNone)) {
    return fail(Errc::kBadInput,
                "socks5: proxy chose method " + std::to_string(m) + " that was not offered");
  }
  return m;
}

Result<Bytes> build_socks5_auth(const Credentials& c) {
  if (c.username.empty() || c.username.size() > 255) {
    return fail(Errc::kBadInput, "socks5 username must be 1..255 bytes");
  }
  if (c.password.empty() || c.password.size() > 255) {
    return fail(Errc::kBadInput, "socks5 password must be 1..255 bytes");
  }
  Bytes out;
  put(out, kAuthVersion);
  put(out, static_cast<std::uint8_t>(c.username.size()));
  put_text(out, c.username);
  put(out, static_cast<std::uint8_t>(c.password.size()));
  put_text(out, c.password);
  return out;
}

Result<void> parse_socks5_auth_reply(ByteSpan in) {
  if (auto r = need(in, 2, "socks5 auth reply"); !r) return r;
  if (u8(in[0]) != kAuthVersion && u8(in[0]) != kSocks5Version) {
    return fail(Errc::kBadInput, "socks5 auth reply: version byte " + std::to_string(u8(in[0])));
  }
  if (u8(in[1]) != 0) {
    return fail(Errc::kPermission,
                "socks5 username/password rejected (status " + std::to_string(u8(in[1])) + ")");
  }
  return {};
}

Result<Bytes> build_socks5_connect(const Target& target) {
  Bytes out;
  put(out, kSocks5Version);
  put(out, kCmdConnect);
  put(out, 0);  // RSV
  switch (target.kind) {
    case Target::Kind::kIpv4:
      put(out, kAtypIpv4);
      out.insert(out.end(), target.ip.begin(), target.ip.begin() + 4);
      break;
    case Target::Kind::kIpv6:
      put(out, kAtypIpv6);
      out.insert(out.end(), target.ip.begin(), target.ip.end());
      break;
    case Target::Kind::kName:
      if (target.name.empty() || target.name.size() > 255) {
        return fail(Errc::kBadInput, "socks5 target name must be 1..255 bytes");
      }
      put(out, kAtypName);
      put(out, static_cast<std::uint8_t>(target.name.size()));
      put_text(out, target.name);
      break;
  }
  put_port(out, target.port);
  return out;
}

Result<std::size_t> socks5_reply_size(ByteSpan head) {
  if (auto r = need(head, 5, "socks5 connect reply"); !r) return tl::unexpected(r.error());
  if (u8(head[0]) != kSocks5Version) {
    return fail(Errc::kBadInput,
                "socks5 connect reply: version byte " + std::to_string(u8(head[0])));
  }
  // 4 header bytes + address + 2 port bytes.
  switch (u8(head[3])) {
    case kAtypIpv4:
      return std::size_t{4 + 4 + 2};
    case kAtypIpv6:
      return std::size_t{4 + 16 + 2};
    case kAtypName:
      return std::size_t{4} + 1 + u8(head[4]) + 2;
    default:
      break;
  }
  // A refusal may come with a zeroed address type (seen from small servers);
  // the code is the useful part, so name it rather than the address type.
  if (u8(head[1]) != 0) {
    return fail(Errc::kBadHandshake,
                code_text("socks5 connect refused", socks5_reply_text(u8(head[1])), u8(head[1])));
  }
  return fail(Errc::kBadInput,
              "socks5 connect reply: unknown address type " + std::to_string(u8(head[3])));
}

Result<Target> parse_socks5_reply(ByteSpan in) {
  auto size = socks5_reply_size(in);
  if (!size) return tl::unexpected(size.error());
  if (auto r = need(in, *size, "socks5 connect reply"); !r) return tl::unexpected(r.error());
  const std::uint8_t rep = u8(in[1]);
  if (rep != 0) {
    return fail(Errc::kBadHandshake,
                code_text("socks5 connect refused", socks5_reply_text(rep), rep));
  }
  Target bound;
  switch (u8(in[3])) {
    case kAtypIpv4:
      bound.kind = Target::Kind::kIpv4;
      std::copy_n(in.begin() + 4, 4, bound.ip.begin());
      break;
    case kAtypIpv6:
      bound.kind = Target::Kind::kIpv6;
      std::copy_n(in.begin() + 4, 16, bound.ip.begin());
      break;
    default:
      bound.kind = Target::Kind::kName;
      bound.name.assign(reinterpret_cast<const char*>(in.data()) + 5, u8(in[4]));
      break;
  }
  bound.port = load_be16(in.data() + *size - 2);
  return bound;
}

std::string_view socks5_reply_text(std::uint8_t rep) noexcept {
  switch (rep) {
    case 0:
      return "succeeded";
    case 1:
      return "general SOCKS server failure";
    case 2:
      return "connection not allowed by ruleset";
    case 3:
      return "network unreachable";
    case 4:
      return "host unreachable";
    case 5:
      return "connection refused";
    case 6:
      return "TTL expired";
    case 7:
      return "command not supported";
    case 8:
      return "address type not supported";
    default:
      return "unknown";
  }
}

std::string_view socks4_reply_text(std::uint8_t cd) noexcept {
  switch (cd) {
    case 90:
      return "granted";
    case 91:
      return "rejected or failed";
    case 92:
      return "rejected: proxy cannot reach the client's identd";
    case 93:
      return "rejected: identd user id mismatch";
    default:
      return "unknown";
  }
}

Result<ClientHandshake> ClientHandshake::start(Version version, const Target& target,
                                               const Credentials& creds) {
  ClientHandshake hs;
  if (version == Version::kSocks4) {
    auto req = build_socks4_connect(target, creds.username);
    if (!req) return tl::unexpected(req.error());
    hs.first_ = std::move(*req);
    hs.state_ = State::kSocks4Reply;
    hs.need_ = kSocks4ReplySize;
    return hs;
  }
  hs.with_credentials_ = !creds.username.empty();
  if (hs.with_credentials_) {
    auto auth = build_socks5_auth(creds);
    if (!auth) return tl::unexpected(auth.error());
    hs.auth_ = std::move(*auth);
  }
  auto connect = build_socks5_connect(target);
  if (!connect) return tl::unexpected(connect.error());
  hs.connect_ = std::move(*connect);
  hs.first_ = build_socks5_greeting(hs.with_credentials_);
  hs.state_ = State::kMethod;
  hs.need_ = 2;
  return hs;
}

Result<Step> ClientHandshake::fail_with(Error e) {
  state_ = State::kFailed;
  need_ = 0;
  return tl::unexpected(std::move(e));
}

Result<Step> ClientHandshake::feed(ByteSpan in) {
  Step step;
  if (in.size() < need_) {
    step.need = need_;
    return step;
  }
  switch (state_) {
    case State::kSocks4Reply: {
      if (auto r = parse_socks4_reply(in.first(kSocks4ReplySize)); !r) return fail_with(r.error());
      step.consumed = kSocks4ReplySize;
      step.done = true;
      step.bound.port = static_cast<std::uint16_t>(u8(in[2]) << 8 | u8(in[3]));
      std::copy_n(in.begin() + 4, 4, step.bound.ip.begin());
      state_ = State::kDone;
      need_ = 0;
      return step;
    }
    case State::kMethod: {
      auto m = parse_socks5_method(in.first(2), with_credentials_);
      if (!m) return fail_with(m.error());
      step.consumed = 2;
      if (with_credentials_) {
        step.send = std::move(auth_);
        state_ = State::kAuth;
        need_ = 2;
      } else {
        step.send = std::move(connect_);
        state_ = State::kConnectReply;
        need_ = 5;
      }
      step.need = need_;
      return step;
    }
    case State::kAuth: {
      if (auto r = parse_socks5_auth_reply(in.first(2)); !r) return fail_with(r.error());
      step.consumed = 2;
      step.send = std::move(connect_);
      state_ = State::kConnectReply;
      need_ = 5;
      step.need = need_;
      return step;
    }
    case State::kConnectReply: {
      auto size = socks5_reply_size(in);
      if (!size) return fail_with(size.error());
      if (in.size() < *size) {
        need_ = *size;
        step.need = need_;
        return step;
      }
      auto r = parse_socks5_reply(in.first(*size));
      if (!r) return fail_with(r.error());
      step.consumed = *size;
      step.done = true;
      step.bound = std::move(*r);
      state_ = State::kDone;
      need_ = 0;
      return step;
    }
    case State::kDone:
      return fail(Errc::kInternal, "socks handshake already done");
    case State::kFailed:
      break;
  }
  return fail(Errc::kInternal, "socks handshake already failed");
}

}  // namespace mtw::proto::socks
