// mtw-fake-mask: a fake mask host (the web server probes should see).
//
//   mtw-fake-mask [--listen HOST:PORT] --record-dir DIR [--response TEXT]
//
//   --listen HOST:PORT  default 127.0.0.1:0; prints "listening <port>" once bound.
//   --record-dir DIR    every byte a connection sends goes to DIR/conn-N.part,
//                       renamed to DIR/conn-N.bin when the peer has closed its side.
//   --response TEXT     sent once after the first bytes arrive (default: a small
//                       HTTP/1.1 200 answer with body "mask-answer\n"); the
//                       connection is closed after the peer's FIN.
// Single-threaded Asio; runs until killed.
#include <boost/asio.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "proto/dc_table.h"

namespace asio = boost::asio;
using asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

struct Config {
  std::string listen = "127.0.0.1:0";
  std::string dir;
  std::string response =
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n"
      "Connection: close\r\n\r\nmask-answer\n";
};

asio::awaitable<void> serve(tcp::socket sock, const Config& c, unsigned id) {
  std::string base = c.dir + "/conn-" + std::to_string(id);
  std::ofstream out(base + ".part", std::ios::binary);
  std::array<char, 16384> buf;
  bool answered = false;
  for (;;) {
    auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), nothrow);
    if (ec) break;
    out.write(buf.data(), static_cast<std::streamsize>(n));
    out.flush();
    if (!answered) {
      answered = true;
      auto [wec, w] = co_await asio::async_write(sock, asio::buffer(c.response), nothrow);
      if (wec) break;
    }
  }
  out.close();
  std::error_code fec;
  std::filesystem::rename(base + ".part", base + ".bin", fec);
  boost::system::error_code ignored;
  sock.shutdown(tcp::socket::shutdown_both, ignored);
}

asio::awaitable<void> accept_loop(tcp::acceptor& acc, const Config& c) {
  unsigned next = 0;
  for (;;) {
    auto [ec, sock] = co_await acc.async_accept(nothrow);
    if (ec) {
      if (!acc.is_open()) co_return;
      continue;
    }
    asio::co_spawn(acc.get_executor(), serve(std::move(sock), c, next++), asio::detached);
  }
}

int main(int argc, char** argv) {
  Config c;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--listen")
      c.listen = v;
    else if (a == "--record-dir")
      c.dir = v;
    else if (a == "--response")
      c.response = v;
    else
      c.dir.clear(), i = argc;
  }
  if (c.dir.empty() || argc % 2 == 0) {
    std::fprintf(stderr,
                 "usage: mtw-fake-mask [--listen HOST:PORT] --record-dir DIR [--response TEXT]\n");
    return 2;
  }
  bool any = c.listen.ends_with(":0");
  auto ep =
      mtw::proto::parse_endpoint(any ? c.listen.substr(0, c.listen.size() - 1) + "1" : c.listen);
  if (!ep) return 2;
  asio::io_context io(1);
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address(ep->host), any ? 0 : ep->port));
  std::printf("listening %u\n", acc.local_endpoint().port());
  std::fflush(stdout);
  asio::signal_set sigs(io, SIGTERM, SIGINT);
  sigs.async_wait([&](auto, int) { io.stop(); });
  asio::co_spawn(io, accept_loop(acc, c), asio::detached);
  io.run();
  return 0;
}
