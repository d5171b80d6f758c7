// Client links for a user (tg://proxy and https://t.me/proxy, via
// worker::proxy_links) and their QR codes, rendered locally with
// libqrencode: UTF-8 half blocks for a terminal, SVG and PNG for files.
// Never a third-party service. Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "proto/bytes.h"

namespace mtw::supervisor {

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
