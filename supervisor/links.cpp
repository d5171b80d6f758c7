#include "supervisor/links.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <png.h>
#include <qrencode.h>

#include <algorithm>
#include <cerrno>
#include <csetjmp>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>

#include <fmt/format.h>

#include "proto/links.h"

namespace mtw::supervisor {
namespace {

using base::Errc;
using base::fail;
using base::Result;

// Byte capacity of the largest QR code (version 40) at level M in 8-bit mode.
constexpr std::size_t kMaxQrBytes = 2331;
constexpr int kTerminalQuietModules = 2;
constexpr int kImageQuietModules = 4;
// Caps the PNG at (177 + 8) * 32 = 5920 px a side (35 MB of grey rows).
constexpr int kMaxModulePx = 32;

struct QrFree {
  void operator()(QRcode* q) const noexcept { QRcode_free(q); }
};
using QrPtr = std::unique_ptr<QRcode, QrFree>;

// The symbol without quiet zone: `width` modules a side, bit 0 of each byte is "dark".
[[nodiscard]] Result<QrPtr> encode(std::string_view text) {
  if (text.empty()) return fail(Errc::kBadInput, "qr: empty text");
  if (text.size() > kMaxQrBytes) {
    return fail(Errc::kBadInput, fmt::format("qr: text of {} bytes is too long for a QR code "
                                             "(at most {} bytes at level M)",
                                             text.size(), kMaxQrBytes));
  }
  errno = 0;
  // encodeData, not encodeString8bit: the length is explicit, so a NUL byte is data.
  QrPtr q(QRcode_encodeData(static_cast<int>(text.size()),
                            reinterpret_cast<const unsigned char*>(text.data()), 0, QR_ECLEVEL_M));
  if (!q) {
    const int err = errno;
    if (err == ENOMEM) return fail(Errc::kInternal, "qr: out of memory");
    return fail(Errc::kBadInput,
                fmt::format("qr: cannot encode text of {} bytes: {}", text.size(),
                            err == ERANGE ? "too long for a QR code" : std::strerror(err)));
  }
  return q;
}

// Coordinates include a quiet zone of `quiet` modules; outside the symbol is light.
bool dark_at(const QRcode& q, int quiet, int x, int y) noexcept {
  x -= quiet;
  y -= quiet;
  if (x < 0 || y < 0 || x >= q.width || y >= q.width) return false;
  return (q.data[static_cast<std::size_t>(y) * q.width + x] & 1) != 0;
}

[[nodiscard]] Result<void> check_module_px(int module_px) {
  if (module_px < 1 || module_px > kMaxModulePx) {
    return fail(Errc::kBadInput,
                fmt::format("qr: module_px={} outside 1..{}", module_px, kMaxModulePx));
  }
  return {};
}

// ---- PNG ------------------------------------------------------------------

struct PngSink {
  proto::Bytes* out;
  char error[128];  // libpng's message; fixed size, filled inside the error callback.
};

void png_on_error(png_structp png, png_const_charp msg) {
  auto* sink = static_cast<PngSink*>(png_get_error_ptr(png));
  std::snprintf(sink->error, sizeof sink->error, "%s", msg ? msg : "unknown error");
  png_longjmp(png, 1);
}

void png_on_warning(png_structp, png_const_charp) {}

void png_on_write(png_structp png, png_bytep data, png_size_t len) {
  auto* sink = static_cast<PngSink*>(png_get_io_ptr(png));
  bool oom = false;
  try {
    sink->out->insert(sink->out->end(), reinterpret_cast<const std::byte*>(data),
                      reinterpret_cast<const std::byte*>(data) + len);
  } catch (const std::bad_alloc&) {
    oom = true;
  }
  if (oom) png_error(png, "out of memory");  // outside the catch: it longjmps
}

void png_on_flush(png_structp) {}

struct PngWriteStruct {
  png_structp png = nullptr;
  png_infop info = nullptr;
  PngWriteStruct() = default;
  PngWriteStruct(const PngWriteStruct&) = delete;
  PngWriteStruct& operator=(const PngWriteStruct&) = delete;
  ~PngWriteStruct() { png_destroy_write_struct(&png, info ? &info : nullptr); }
};

// libpng reports errors by longjmp to here, so this frame holds no object with a
// destructor and touches no local after the jump. False on a libpng error.
bool png_write_all(png_structp png, png_infop info, png_uint_32 side, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_IHDR(png, info, side, side, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, nullptr);
  return true;
}

}  // namespace

Result<std::string> qr_terminal(std::string_view text) {
  auto q = encode(text);
  if (!q) return tl::unexpected(std::move(q.error()));
  const QRcode& code = **q;
  const int side = code.width + 2 * kTerminalQuietModules;
  // A drawn cell is light: dark modules are left as terminal background.
  // Rows past the bottom edge (side is odd) are background too.
  auto light = [&](int x, int y) {
    return y < side && !dark_at(code, kTerminalQuietModules, x, y);
  };
  std::string out;
  out.reserve(static_cast<std::size_t>((side + 1) / 2) * (side * 3 + 1));
  for (int y = 0; y < side; y += 2) {
    for (int x = 0; x < side; ++x) {
      const bool top = light(x, y);
      const bool bottom = light(x, y + 1);
      out += top ? (bottom ? "\u2588" : "\u2580") : (bottom ? "\u2584" : " ");
    }
    out += '\n';
  }
  return out;
}

Result<std::string> qr_svg(std::string_view text, int module_px) {
  if (auto ok = check_module_px(module_px); !ok) return tl::unexpected(std::move(ok.error()));
  auto q = encode(text);
  if (!q) return tl::unexpected(std::move(q.error()));
  const QRcode& code = **q;
  const int side = code.width + 2 * kImageQuietModules;
  std::string out = fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{0}\" height=\"{0}\" "
      "viewBox=\"0 0 {1} {1}\" shape-rendering=\"crispEdges\">\n"
      "<rect width=\"{1}\" height=\"{1}\" fill=\"#ffffff\"/>\n"
      "<path fill=\"#000000\" d=\"",
      side * module_px, side);
  // One subpath per horizontal run of dark modules, in module units.
  for (int y = 0; y < side; ++y) {
    for (int x = 0; x < side;) {
      if (!dark_at(code, kImageQuietModules, x, y)) {
        ++x;
        continue;
      }
      int run = 1;
      while (dark_at(code, kImageQuietModules, x + run, y)) ++run;
      out += fmt::format("M{},{}h{}v1h-{}z", x, y, run, run);
      x += run;
    }
  }
  out += "\"/>\n</svg>\n";
  return out;
}

Result<proto::Bytes> qr_png(std::string_view text, int module_px) {
  if (auto ok = check_module_px(module_px); !ok) return tl::unexpected(std::move(ok.error()));
  auto q = encode(text);
  if (!q) return tl::unexpected(std::move(q.error()));
  const QRcode& code = **q;
  const int modules = code.width + 2 * kImageQuietModules;
  const auto side = static_cast<std::size_t>(modules) * module_px;

  // Every pixel row of a module row is the same: one buffer per module row.
  std::vector<std::vector<png_byte>> module_rows(modules, std::vector<png_byte>(side));
  for (int my = 0; my < modules; ++my) {
    for (std::size_t px = 0; px < side; ++px) {
      const bool dark = dark_at(code, kImageQuietModules, static_cast<int>(px / module_px), my);
      module_rows[my][px] = dark ? 0x00 : 0xff;
    }
  }
  std::vector<png_bytep> rows(side);
  for (std::size_t y = 0; y < side; ++y) rows[y] = module_rows[y / module_px].data();

  proto::Bytes out;
  PngSink sink{&out, {}};
  PngWriteStruct w;
  w.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, png_on_error, png_on_warning);
  if (w.png) w.info = png_create_info_struct(w.png);
  if (!w.png || !w.info) return fail(Errc::kInternal, "qr: png: cannot allocate write struct");
  png_set_write_fn(w.png, &sink, png_on_write, png_on_flush);
  if (!png_write_all(w.png, w.info, static_cast<png_uint_32>(side), rows.data())) {
    return fail(Errc::kInternal, fmt::format("qr: png: {}", sink.error));
  }
  return out;
}

bool listener_takes(const proto::AllowedProtocols& p, proto::SecretKind kind) noexcept {
  switch (kind) {
    case proto::SecretKind::kFakeTls:
      return p.fake_tls;
    case proto::SecretKind::kSecure:
      return p.padded;
    case proto::SecretKind::kSimple:
      return p.abridged || p.intermediate || p.padded;
  }
  return false;
}

UserLinks user_links(std::string host, std::uint16_t public_port,
                     const std::vector<ListenerConfig>& listeners,
                     const std::vector<std::string>& secrets_hex) {
  UserLinks l;
  l.host = std::move(host);
  if (public_port != 0) {
    l.ports.push_back(public_port);
  } else {
    for (const auto& lc : listeners) {
      if (std::find(l.ports.begin(), l.ports.end(), lc.bind.port) == l.ports.end()) {
        l.ports.push_back(lc.bind.port);
      }
    }
  }
  for (const auto& hex : secrets_hex) {
    auto s = proto::parse_secret(hex);
    if (!s) continue;
    for (std::uint16_t port : l.ports) {
      const bool taken =
          std::any_of(listeners.begin(), listeners.end(), [&](const ListenerConfig& lc) {
            return (public_port != 0 || lc.bind.port == port) &&
                   listener_takes(lc.protocols, s->kind);
          });
      if (!taken) continue;
      for (auto& link : proto::proxy_links(*s, l.host, port)) {
        (link.starts_with("tg://") ? l.tg : l.https).push_back(std::move(link));
      }
    }
  }
  return l;
}

std::string choose_public_host(std::string_view configured, std::string_view looked_up) {
  if (!configured.empty()) return std::string(configured);
  if (!looked_up.empty()) return std::string(looked_up);
  // No lookup on the network: the first global address of this host.
  std::string found;
  ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) == 0) {
    for (ifaddrs* i = ifs; i != nullptr && found.empty(); i = i->ifa_next) {
      if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
      const auto a = reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr;
      if ((ntohl(a.s_addr) >> 24) == 127) continue;
      char buf[INET_ADDRSTRLEN] = {};
      if (::inet_ntop(AF_INET, &a, buf, sizeof buf) != nullptr) found = buf;
    }
    ::freeifaddrs(ifs);
  }
  return found.empty() ? "127.0.0.1" : found;
}

}  // namespace mtw::supervisor
