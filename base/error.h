// Result<T> and Error: the error-return convention of every mtwarden module.
// Failures that are normal outcomes (hostile bytes, kernel errnos) travel as
// values; exceptions only cross library boundaries of Boost/std and are caught
// at the edges (see docs/style in ../shared/docs/style.md). Thread-safe: plain values.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

namespace mtw::base {

enum class Errc {
  kBadInput,      // malformed bytes or text (parsers, config)
  kShortInput,    // more bytes are needed before a decision can be made
  kBadHandshake,  // well-formed but not ours: wrong secret, bad HMAC, unknown tag
  kReplay,        // handshake digest seen before
  kClockSkew,     // timestamp outside the allowed window
  kWrongSni,      // fake-TLS SNI does not match the secret's domain
  kTooLarge,      // a length over a hard cap
  kCrypto,        // OpenSSL failure
  kSyscall,       // a system call failed; see sys_errno
  kNetlink,       // netlink failure; see sys_errno
  kNft,           // libnftables failure
  kNotFound,
  kExists,
  kExhausted,   // a pool or budget is used up
  kPermission,  // missing capability or privilege
  kTimeout,
  kInternal,
};

std::string_view errc_name(Errc c) noexcept;

struct Error {
  Errc code = Errc::kInternal;
  int sys_errno = 0;
  std::string context;

  // "bad_input: secret: odd number of hex digits" / "... errno=17 (File exists)".
  std::string to_string() const;
};

template <class T = void>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(Errc code, std::string context) {
  return tl::unexpected<Error>(Error{code, 0, std::move(context)});
}

// Captures errno at the call site; call immediately after the failing syscall.
inline tl::unexpected<Error> fail_errno(std::string context, int err = errno) {
  return tl::unexpected<Error>(Error{Errc::kSyscall, err, std::move(context)});
}

}  // namespace mtw::base
