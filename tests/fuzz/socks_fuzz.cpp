// Fuzzes the SOCKS client against arbitrary proxy replies: the first byte
// picks SOCKS4, SOCKS5 or SOCKS5 with credentials, the rest is what the
// "proxy" answers, fed in pieces of the sizes the handshake asks for.
// Aborts (a finding) when a step consumes more than it was given, reports
// done while asking for more, or an error text carries the password.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "proto/socks.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mtw::proto;
  using namespace mtw::proto::socks;
  if (size == 0) return 0;
  const ByteSpan all(reinterpret_cast<const std::byte*>(data), size);
  const unsigned mode = data[0] % 3;
  ByteSpan in = all.subspan(1);

  // The standalone parsers see the same bytes.
  (void)parse_socks4_reply(in);
  (void)parse_socks5_method(in, mode == 2);
  (void)parse_socks5_auth_reply(in);
  if (auto n = socks5_reply_size(in); n && in.size() >= *n) {
    auto r = parse_socks5_reply(in.first(*n));
    if (r && r->kind == Target::Kind::kName && r->name.size() > 255) std::abort();
  }

  const std::string password = "fuzz-password-canary";
  const Credentials creds = mode == 2 ? Credentials{"fuzz-user", password} : Credentials{};
  auto target = make_target(mode == 0 ? "149.154.167.51" : "2001:b28:f23d:f001::a", 443);
  if (!target) std::abort();
  auto hs = ClientHandshake::start(mode == 0 ? Version::kSocks4 : Version::kSocks5, *target, creds);
  if (!hs) std::abort();
  std::size_t need = hs->first_need();
  std::size_t have = 0;  // bytes of `in` delivered so far
  std::size_t used = 0;  // bytes consumed
  while (have < in.size()) {
    have = std::min(in.size(), used + need);
    auto step = hs->feed(in.subspan(used, have - used));
    if (!step) {
      if (step.error().to_string().find(password) != std::string::npos) std::abort();
      if (hs->done()) std::abort();
      return 0;
    }
    if (step->consumed > have - used) std::abort();
    used += step->consumed;
    if (step->done) {
      if (step->need != 0 || !hs->done()) std::abort();
      return 0;
    }
    if (step->need == 0) std::abort();
    need = step->need;
    if (step->consumed == 0 && used + need <= have) std::abort();  // no progress possible
  }
  return 0;
}
