// SOCKS client handshakes (SOCKS4 and 4a, SOCKS5 with RFC 1929
// username/password): request builders, reply parsers and a small state
// machine that strings them together. The worker dials a DC through an
// upstream proxy with these; no sockets, clocks or loggers here.
//
// Addresses travel as addresses: an IP literal target is sent as an IPv4
// (SOCKS4, SOCKS5 ATYP 1) or IPv6 (SOCKS5 ATYP 4) address, so nothing is
// resolved by anyone. Only a target given as a name goes out as a name
// (SOCKS4a, SOCKS5 ATYP 3) and is resolved by the proxy, never locally.
//
// Errors: kBadInput for a request we must not send (over-long name,
// credentials out of range, IPv6 over SOCKS4) and for replies that are not
// SOCKS (wrong version byte, bad address type); kPermission when the proxy
// refuses our authentication (no acceptable method, RFC 1929 failure);
// kBadHandshake when the proxy refuses the connect, with its code named
// ("socks5 connect refused: host unreachable (4)"); kShortInput when more
// reply bytes are needed. No error text carries a credential.
// Thread-safe: plain values and pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proto/bytes.h"

namespace mtw::proto::socks {

enum class Version { kSocks4, kSocks5 };

struct Target {
  enum class Kind { kIpv4, kIpv6, kName };
  Kind kind = Kind::kIpv4;
  std::array<std::byte, 16> ip{};  // kIpv4: the first 4 bytes, network order
  std::string name;                // kName only: 1..255 bytes, no NUL
  std::uint16_t port = 0;
  friend bool operator==(const Target&, const Target&) = default;
};

// An IP literal ("149.154.167.51", "2001:b28:f23d:f001::a", no brackets)
// becomes an address target; anything else a name target. kBadInput: empty
// or over 255 bytes, a NUL, or port 0.
[[nodiscard]] Result<Target> make_target(std::string_view host, std::uint16_t port);

// RFC 1929 limits both fields to 1..255 bytes. SOCKS4 sends `username` as
// the user id (NUL-terminated, so no NUL inside) and ignores the password.
struct Credentials {
  std::string username;  // empty: SOCKS5 offers "no authentication" only
  std::string password;
};

// --- SOCKS4 / SOCKS4a (one request, one 8-byte reply) ---
inline constexpr std::size_t kSocks4ReplySize = 8;
// CONNECT to an IPv4 target (SOCKS4) or a name (SOCKS4a: DSTIP 0.0.0.1 and
// the name after the user id). kBadInput for an IPv6 target.
[[nodiscard]] Result<Bytes> build_socks4_connect(const Target& target, std::string_view user_id);
// Needs exactly kSocks4ReplySize bytes (kShortInput with fewer). Success
// only on CD 90; 91, 92 and 93 are named refusals (kBadHandshake).
[[nodiscard]] Result<void> parse_socks4_reply(ByteSpan in);

// --- SOCKS5 ---
inline constexpr std::uint8_t kMethodNone = 0x00;
inline constexpr std::uint8_t kMethodUserPass = 0x02;
inline constexpr std::uint8_t kMethodNoAcceptable = 0xff;

// Greeting offering exactly one method: user/pass with credentials, none
// without (a proxy that would let us in unauthenticated must not silently
// skip the per-user metering the operator configured).
Bytes build_socks5_greeting(bool with_credentials);
// The 2-byte method choice. Returns the method; kPermission for 0xff,
// kBadInput for a method we did not offer.
[[nodiscard]] Result<std::uint8_t> parse_socks5_method(ByteSpan in, bool with_credentials);
// RFC 1929 sub-negotiation request; kBadInput when a field is not 1..255 bytes.
[[nodiscard]] Result<Bytes> build_socks5_auth(const Credentials& c);
// RFC 1929 reply (VER 1, STATUS 0 = success); kPermission on any other status.
// Some servers answer with VER 5; accepted, as curl and Firefox do.
[[nodiscard]] Result<void> parse_socks5_auth_reply(ByteSpan in);
// CONNECT request with ATYP 1, 4 or 3.
[[nodiscard]] Result<Bytes> build_socks5_connect(const Target& target);
// Size of the whole CONNECT reply once its first 5 bytes are known (the
// address type and, for a name, its length); kShortInput with fewer,
// kBadInput when it is not a SOCKS5 reply.
[[nodiscard]] Result<std::size_t> socks5_reply_size(ByteSpan head);
// Parses a whole CONNECT reply (as sized by socks5_reply_size). Returns the
// bound address the proxy reports; REP != 0 is a named refusal.
[[nodiscard]] Result<Target> parse_socks5_reply(ByteSpan in);

// Text for a reply code, e.g. "host unreachable"; "unknown" otherwise.
std::string_view socks5_reply_text(std::uint8_t rep) noexcept;
std::string_view socks4_reply_text(std::uint8_t cd) noexcept;

// The whole client side of one handshake. Use:
//   auto hs = ClientHandshake::start(version, target, creds);   // validates
//   write(hs->first_request());
//   loop: read until `buffered.size() >= step.need`, feed(buffered),
//         drop step->consumed bytes, write step->send if any, until done.
// Reading exactly `need` bytes never reads past the final reply, so every
// byte after it belongs to the tunnel.
struct Step {
  std::size_t consumed = 0;  // bytes of the input this step used
  std::size_t need = 0;      // bytes the next feed needs buffered (0 when done)
  Bytes send;                // to write before reading again
  bool done = false;         // the tunnel is open
  // With done: the address the proxy reports for its own end of the tunnel
  // (SOCKS5 BND.ADDR/BND.PORT, SOCKS4 DSTIP/DSTPORT): the source a middle
  // proxy sees. All zero when the proxy reports none (microsocks does so).
  Target bound;
};

class ClientHandshake {
 public:
  [[nodiscard]] static Result<ClientHandshake> start(Version version, const Target& target,
                                                     const Credentials& creds);
  const Bytes& first_request() const noexcept { return first_; }
  // Bytes to have buffered before the first feed.
  std::size_t first_need() const noexcept { return need_; }
  // Feeds the unconsumed reply bytes. With fewer than `need` bytes: a Step
  // with consumed 0 and the (possibly larger) need. Errors are final.
  [[nodiscard]] Result<Step> feed(ByteSpan in);
  bool done() const noexcept { return state_ == State::kDone; }

 private:
  enum class State { kSocks4Reply, kMethod, kAuth, kConnectReply, kDone, kFailed };
  ClientHandshake() = default;
  [[nodiscard]] Result<Step> fail_with(Error e);

  State state_ = State::kFailed;
  Bytes first_;
  Bytes auth_;     // SOCKS5 with credentials: the RFC 1929 request
  Bytes connect_;  // SOCKS5: the CONNECT request
  bool with_credentials_ = false;
  std::size_t need_ = 0;
};

}  // namespace mtw::proto::socks
