// Fuzzes the WEB proxy carrier and access parsers over text: the first input
// byte picks the parser, the rest is its input. Properties:
//  - websocket_session_token / bearer_token return a view into the input of
//    a well-formed token, which the issuer's verify() then handles without
//    crashing (and never accepts: the fuzzer cannot forge the MAC);
//  - parse_web_counter accepts exactly the canonical decimal spelling of
//    the value it returns;
//  - parse_bridge_target returns 43 base64url characters from the input;
//  - parse_web_proxy_address returns a host and path that parse again to the
//    same address, and its capability and links do not fail;
//  - WebUplinkSequencer/WebDownlinkCursor, driven by (seq, body) pairs cut
//    from the input, never move backwards.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proto/webproxy_access.h"
#include "proto/webproxy_carrier.h"

namespace {

using namespace mtw::proto;

const std::array<std::byte, 32> kKey{};

bool inside(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

void check_token_view(WebResult<std::string_view> r, std::string_view in) {
  if (!r) {
    if (r.error() != WebReason::kBadToken) std::abort();
    return;
  }
  if (!inside(*r, in) || !token_well_formed(*r)) std::abort();
  const WebTokenIssuer issuer(kKey);
  if (issuer.verify(*r, WebTokenKind::kSession, 0)) std::abort();
}

void sequencers(std::string_view in) {
  WebUplinkSequencer up;
  WebDownlinkCursor down;
  std::uint64_t last_up = 0, last_down = 0;
  for (std::size_t i = 0; i + 2 <= in.size(); i += 2) {
    const std::uint64_t n = static_cast<unsigned char>(in[i]) % 4;
    const std::string_view body = in.substr(i + 1, 1);
    (void)up.on_post(last_up + n - (n == 3 ? 4 : 0), as_bytes(body));
    if (up.last_seq() < last_up) std::abort();
    last_up = up.last_seq();
    auto p = down.on_poll(down.cursor() + n - (n >= 2 ? 3 : 0));
    if (p && *p == WebDownlinkCursor::Poll::kFresh && (in[i + 1] & 1)) {
      down.commit(Bytes(as_bytes(body).begin(), as_bytes(body).end()));
    }
    if (down.cursor() < last_down) std::abort();
    last_down = down.cursor();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 6) {
    case 0:
      check_token_view(websocket_session_token(in), in);
      break;
    case 1:
      check_token_view(bearer_token(in), in);
      break;
    case 2: {
      const auto r = parse_web_counter(in);
      if (r.has_value() != (!in.empty() && std::to_string(r.value_or(0)) == in)) std::abort();
      if (r && *r > (std::uint64_t{1} << 53)) std::abort();
      break;
    }
    case 3: {
      const WebProxyAddress addr{"proxy.example.com", (data[0] & 0x80) ? "p/q" : ""};
      const auto r = parse_bridge_target(in, addr);
      if (r && (r->size() != kCapabilityChars || !inside(*r, in))) std::abort();
      break;
    }
    case 4: {
      const auto a = parse_web_proxy_address(in);
      if (!a) break;
      const std::string again = a->path.empty() ? a->host : a->host + "/" + a->path;
      const auto b = parse_web_proxy_address(again);
      if (!b || *b != *a) std::abort();
      Secret s;
      if (!web_capability(s, *a) || !web_proxy_links(s, *a)) std::abort();
      break;
    }
    case 5:
      sequencers(in);
      break;
  }
  return 0;
}
