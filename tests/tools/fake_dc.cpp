// mtw-fake-dc: a fake Telegram DC for tests and benchmarks (loopback only).
//
//   mtw-fake-dc [--listen HOST:PORT] [--mode echo|sink|source] [--expect-dc N]
//               [--record FILE] [--source-bytes N]
//
//   --listen HOST:PORT  where to listen (default 127.0.0.1:0); prints
//                       "listening <port>" on stdout once bound.
//   --mode echo         decrypt what the proxy sends (obfuscated2 as a DC sees
//                       it: keys from the proxy's init, no secret) and send every
//                       byte back re-encrypted. Default.
//   --mode sink         read and discard (no decryption).
//   --mode source       after the init, send bytes as fast as the proxy takes them
//                       (unencrypted filler; the proxy cannot tell), until
//                       --source-bytes N were sent (0 = forever), then close.
//   --expect-dc N       close connections whose init carries another DC index.
//   --record FILE       append one line per connection:
//                       "dc=N tag=efefefef ok|mismatch from=ADDR" (ADDR = the
//                       connecting peer's address, without port).
//
// Single-threaded Asio; runs until killed (SIGTERM/SIGINT exit 0).
// This CLI is used by tests/integration and bench/: keep it stable.
#include <boost/asio.hpp>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>

#include "proto/aes_ctr.h"
#include "proto/dc_table.h"
#include "proto/obfs2.h"

namespace asio = boost::asio;
using asio::ip::tcp;
using mtw::proto::AesCtr;
using mtw::proto::CipherParams;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

struct Config {
  std::string listen = "127.0.0.1:0";
  std::string mode = "echo";
  std::optional<int> expect_dc;
  std::string record;
  std::uint64_t source_bytes = 0;
};

// The DC's view of a proxy init: decrypt = H[8..40), H[40..56);
// encrypt = reverse(H[8..56)) split 32/16.
struct DcSide {
  AesCtr dec, enc;
  std::uint32_t tag = 0;
  int dc = 0;
};

std::optional<DcSide> decode_init(std::array<std::byte, 64> h) {
  CipherParams d, e;
  std::memcpy(d.key.data(), h.data() + 8, 32);
  std::memcpy(d.iv.data(), h.data() + 40, 16);
  std::array<std::byte, 48> r;
  for (int i = 0; i < 48; ++i) r[i] = h[55 - i];
  std::memcpy(e.key.data(), r.data(), 32);
  std::memcpy(e.iv.data(), r.data() + 32, 16);
  auto dec = AesCtr::create(d);
  auto enc = AesCtr::create(e);
  if (!dec || !enc) return std::nullopt;
  DcSide s{std::move(*dec), std::move(*enc)};
  s.dec.apply(h);  // also advances the stream past the init
  s.tag = mtw::proto::load_le32(h.data() + 56);
  s.dc =
      static_cast<std::int16_t>(std::to_integer<int>(h[60]) | (std::to_integer<int>(h[61]) << 8));
  return s;
}

void record(const Config& c, const DcSide& s, bool ok, const std::string& from) {
  if (c.record.empty()) return;
  std::ofstream out(c.record, std::ios::app);
  char line[96];
  std::snprintf(line, sizeof line, "dc=%d tag=%08x %s", s.dc, s.tag, ok ? "ok" : "mismatch");
  out << line << " from=" << from << "\n";
}

asio::awaitable<void> serve(tcp::socket sock, const Config& c) {
  boost::system::error_code pec;
  auto peer = sock.remote_endpoint(pec);
  const std::string from = pec ? std::string("?") : peer.address().to_string();
  std::array<std::byte, 64> init;
  if (auto [ec, n] = co_await asio::async_read(sock, asio::buffer(init), nothrow); ec) co_return;
  auto side = decode_init(init);
  if (!side) co_return;
  bool tag_ok = side->tag == 0xefefefef || side->tag == 0xeeeeeeee || side->tag == 0xdddddddd;
  bool ok = tag_ok && (!c.expect_dc || *c.expect_dc == side->dc);
  record(c, *side, ok, from);
  if (!ok) co_return;
  std::vector<std::byte> buf(64 * 1024);
  if (c.mode == "source") {
    std::uint64_t sent = 0;
    while (c.source_bytes == 0 || sent < c.source_bytes) {
      std::size_t n = buf.size();
      if (c.source_bytes != 0) n = std::min<std::uint64_t>(n, c.source_bytes - sent);
      auto [ec, w] = co_await asio::async_write(sock, asio::buffer(buf.data(), n), nothrow);
      if (ec) co_return;
      sent += w;
    }
    co_return;
  }
  for (;;) {
    auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), nothrow);
    if (ec) co_return;
    if (c.mode != "echo") continue;
    std::span<std::byte> data(buf.data(), n);
    side->dec.apply(data);
    side->enc.apply(data);
    if (auto [wec, w] = co_await asio::async_write(sock, asio::buffer(buf.data(), n), nothrow);
        wec) {
      co_return;
    }
  }
}

asio::awaitable<void> accept_loop(tcp::acceptor& acc, const Config& c) {
  for (;;) {
    auto [ec, sock] = co_await acc.async_accept(nothrow);
    if (ec) {
      if (!acc.is_open()) co_return;
      continue;
    }
    sock.set_option(tcp::no_delay(true));
    asio::co_spawn(acc.get_executor(), serve(std::move(sock), c), asio::detached);
  }
}

int usage() {
  std::fprintf(stderr,
               "usage: mtw-fake-dc [--listen HOST:PORT] [--mode echo|sink|source] "
               "[--expect-dc N] [--record FILE] [--source-bytes N]\n");
  return 2;
}

int main(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return usage();
    std::string v = argv[++i];
    if (a == "--listen")
      c.listen = v;
    else if (a == "--mode" && (v == "echo" || v == "sink" || v == "source"))
      c.mode = v;
    else if (a == "--expect-dc")
      c.expect_dc = std::stoi(v);
    else if (a == "--record")
      c.record = v;
    else if (a == "--source-bytes")
      c.source_bytes = std::stoull(v);
    else
      return usage();
  }
  auto ep = mtw::proto::parse_endpoint(
      c.listen.ends_with(":0") ? c.listen.substr(0, c.listen.size() - 1) + "1" : c.listen);
  if (!ep) return usage();
  if (c.listen.ends_with(":0")) ep->port = 0;
  asio::io_context io(1);
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address(ep->host), ep->port));
  std::printf("listening %u\n", acc.local_endpoint().port());
  std::fflush(stdout);
  asio::signal_set sigs(io, SIGTERM, SIGINT);
  sigs.async_wait([&](auto, int) { io.stop(); });
  asio::co_spawn(io, accept_loop(acc, c), asio::detached);
  io.run();
  return 0;
}
