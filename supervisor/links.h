// A user's client links: which host and ports they name (the one place
// that decides it, for the API, D-Bus, the CLI and the start-up printer),
// formatted by proto::proxy_links; and QR codes, rendered locally with
// libqrencode: UTF-8 half blocks for a terminal, SVG and PNG for files.
// Never a third-party service. Thread-safe: the functions share no state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "proto/bytes.h"
#include "proto/identify.h"
#include "proto/secret.h"
#include "supervisor/config.h"

namespace mtw::supervisor {

struct UserLinks {
  std::string host;
  std::vector<std::uint16_t> ports;    // the configured public_port, or each listener's port once
  std::vector<std::string> tg, https;  // per secret, per port: hex, then base64url for ee
};

// True when a listener with `p` takes clients of a `kind` secret: ee needs
// tls; dd needs secure; a plain secret any of abridged, intermediate, secure.
[[nodiscard]] bool listener_takes(const proto::AllowedProtocols& p,
                                  proto::SecretKind kind) noexcept;

// The links of a user with `secrets_hex` (stored form; unparsable ones are
// skipped). Ports: `public_port` alone when non-zero (something in front
// forwards it: a secret is offered when any listener takes it), else each
// listener's port once, in listener order, offering a secret only on a
// port with a listener that takes it.
[[nodiscard]] UserLinks user_links(std::string host, std::uint16_t public_port,
                                   const std::vector<ListenerConfig>& listeners,
                                   const std::vector<std::string>& secrets_hex);

// The host links name: `configured` ([server] public_host), else
// `looked_up` ([server] public_host_lookup's answer), else this host's first
// IPv4 address outside 127/8, else "127.0.0.1".
[[nodiscard]] std::string choose_public_host(std::string_view configured,
                                             std::string_view looked_up);

// The QR code (error correction M, 8-bit mode) of `text` as rows of UTF-8
// half-block characters (two modules per character cell, dark modules drawn
// dark on a light quiet zone of 2 modules), one '\n'-terminated line each.
// kBadInput when the text does not fit a QR code.
// Rendering: light modules (and the quiet zone) are the drawn glyphs "█",
// "▀", "▄"; dark modules are left as spaces, i.e. terminal background. On the
// usual dark-background terminal this shows a correct dark-on-light code that
// every phone scanner reads; on a light-background terminal it appears
// inverted (many, not all, scanners read that). Output is (width + 4) cells
// per line and ceil((width + 4) / 2) lines; the last line's lower half is
// background.
// Errors (all three functions): kBadInput for empty text, text over 2331
// bytes (version 40-M capacity) or, for SVG/PNG, module_px outside 1..32;
// kInternal when libpng or libqrencode runs out of memory.
[[nodiscard]] base::Result<std::string> qr_terminal(std::string_view text);
// A standalone SVG document; `module_px` per module, 4-module quiet zone.
[[nodiscard]] base::Result<std::string> qr_svg(std::string_view text, int module_px = 8);
// A PNG image (8-bit grey), `module_px` per module, 4-module quiet zone.
[[nodiscard]] base::Result<proto::Bytes> qr_png(std::string_view text, int module_px = 8);

}  // namespace mtw::supervisor
