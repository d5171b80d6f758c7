// What the HTTPS front answers, decided from the request alone (pure):
//  - the bridge page, at exactly the bridge URL of a known capability
//    (../shared/docs/webproxy.md §1.2, §1.3: no redirect, no other form);
//  - the WebSocket carrier, GET /api/v1/ws with an upgrade and exactly one
//    "tproxy-v1.<token>" subprotocol (§2.1; the token is checked later);
//  - the decoy site for everything else, including a wrong capability, a
//    non-canonical bridge request and a malformed carrier request, so a
//    probe without a capability sees an ordinary static website.
// Also the bridge page itself (our own, written from the app contract §1.4)
// and the decoy's files. Thread-safety: plain values; a DecoySite is
// immutable after load().
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "base/error.h"
#include "proto/webproxy_access.h"

namespace mtw::webfront {

using base::Result;

inline constexpr std::string_view kCarrierPath = "/api/v1/ws";

struct RequestHead {
  std::string_view method;
  std::string_view target;         // as in the request line
  bool websocket_upgrade = false;  // "Upgrade: websocket" with "Connection: upgrade"
  bool has_subprotocol = false;
  std::string_view subprotocol;  // Sec-WebSocket-Protocol, when has_subprotocol
};

struct Route {
  enum class Kind { kDecoy, kBridge, kCarrier };
  Kind kind = Kind::kDecoy;
  std::string_view capability;  // kBridge: points into the target
  std::string_view token;       // kCarrier: points into the subprotocol header
  std::string_view why;         // kDecoy: a metric label (not_bridge, non_canonical, ...)
};

// Routes by shape only; the caller still looks the capability up
// (CapabilityIndex) and checks the token, sending failures to the decoy.
Route route_request(const RequestHead& head, const proto::WebProxyAddress& addr);

// The bridge page's HTML. `bootstrap`: the single-use token the page opens
// its carrier with; `script_nonce`: the CSP nonce of its one inline script.
// Both are base64url, so they need no escaping.
std::string render_bridge_page(std::string_view bootstrap, std::string_view script_nonce);
// Content-Security-Policy of the bridge page: only its inline script, and
// connections only to its own origin.
std::string bridge_csp(const proto::WebProxyAddress& addr, std::string_view script_nonce);

struct DecoyResponse {
  unsigned status = 200;
  std::string_view content_type;
  std::string_view body;  // points into the DecoySite
};

// A small static website held in memory: the files of a directory (regular
// files directly in it, at most 256 files and 16 MiB in all, read once), or a
// built-in page. "/" and "/index.html" give index.html; "/NAME" gives that
// file; anything else (other methods than GET/HEAD, subdirectories, unknown
// names) 404.html, or a built-in 404, with status 404 (405 for a method
// other than GET/HEAD). The query string is ignored, as a static server does.
class DecoySite {
 public:
  DecoySite();  // the built-in site
  // kSyscall naming the path on I/O failure; kTooLarge over the caps.
  [[nodiscard]] static Result<DecoySite> load(const std::string& dir);
  DecoyResponse lookup(std::string_view method, std::string_view target) const;
  std::size_t files() const noexcept { return files_.size(); }

 private:
  struct File {
    std::string content_type;
    std::string body;
  };
  std::map<std::string, File, std::less<>> files_;  // name without the leading '/'
  File not_found_;
};

// Content type by file extension (html, css, js, png, svg, ico, txt, ...).
std::string_view content_type_for(std::string_view name);

}  // namespace mtw::webfront
