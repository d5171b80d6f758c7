#include "base/error.h"

#include <cstring>

namespace mtw::base {

std::string_view errc_name(Errc c) noexcept {
  switch (c) {
    case Errc::kBadInput:
      return "bad_input";
    case Errc::kShortInput:
      return "short_input";
    case Errc::kBadHandshake:
      return "bad_handshake";
    case Errc::kReplay:
      return "replay";
    case Errc::kClockSkew:
      return "clock_skew";
    case Errc::kWrongSni:
      return "wrong_sni";
    case Errc::kTooLarge:
      return "too_large";
    case Errc::kCrypto:
      return "crypto";
    case Errc::kSyscall:
      return "syscall";
    case Errc::kNetlink:
      return "netlink";
    case Errc::kNft:
      return "nft";
    case Errc::kNotFound:
      return "not_found";
    case Errc::kExists:
      return "exists";
    case Errc::kExhausted:
      return "exhausted";
    case Errc::kPermission:
      return "permission";
    case Errc::kTimeout:
      return "timeout";
    case Errc::kInternal:
      return "internal";
  }
  return "unknown";
}

std::string Error::to_string() const {
  std::string s(errc_name(code));
  if (!context.empty()) {
    s += ": ";
    s += context;
  }
  if (sys_errno != 0) {
    s += " errno=" + std::to_string(sys_errno) + " (" + std::strerror(sys_errno) + ")";
  }
  return s;
}

}  // namespace mtw::base
