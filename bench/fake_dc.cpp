// mtw-bench-dc: the Telegram-DC side of the worker benchmarks, on loopback.
//   --init on   each connection starts with the proxy's 64-byte obfuscated2
//               init (protocol.md §3: keys without a secret); it is decoded
//               and its tag checked, else the connection is dropped.
//   --init off  plain TCP (the relay baselines).
//   --mode sink    read and discard everything;
//          source  write a fixed buffer as fast as the peer takes it;
//          echo    send back what arrives: with --init on it is decrypted with
//                  the DC's decrypt stream and re-encrypted with its encrypt
//                  stream, exactly what a client-visible echo needs.
// Sink and source never touch the payload (no crypto), so the DC costs the
// same CPU in baseline and worker runs. One thread, one io_context. Exits on
// SIGINT/SIGTERM or after --max-seconds (default 900).
#include <algorithm>
#include <cstdio>
#include <optional>
#include <vector>

#include "bench/bench_net.h"
#include "proto/aes_ctr.h"
#include "proto/bytes.h"
#include "proto/obfs2.h"

namespace mtw::bench {
namespace {

using asio::awaitable;
using asio::use_awaitable;
constexpr auto kNoThrow = asio::as_tuple(use_awaitable);

enum class Mode { kSink, kSource, kEcho };

struct Options {
  tcp::endpoint listen;
  Mode mode = Mode::kSink;
  bool init = false;
  std::size_t chunk_bytes = kDefaultChunkBytes;
  double max_seconds = 900;
};

// The DC's view of a proxy init: decrypt = H[8..40), H[40..56); encrypt from
// R = reverse(H[8..56)): R[0..32), R[32..48). Decrypt is left past the init.
struct DcStreams {
  proto::AesCtr decrypt;
  proto::AesCtr encrypt;
};

[[nodiscard]] Result<DcStreams> decode_proxy_init(std::span<const std::byte, proto::kInitSize> h) {
  proto::CipherParams d, e;
  std::copy(h.begin() + 8, h.begin() + 40, d.key.begin());
  std::copy(h.begin() + 40, h.begin() + 56, d.iv.begin());
  std::array<std::byte, 48> r{};
  std::reverse_copy(h.begin() + 8, h.begin() + 56, r.begin());
  std::copy(r.begin(), r.begin() + 32, e.key.begin());
  std::copy(r.begin() + 32, r.end(), e.iv.begin());
  auto dec = proto::AesCtr::create(d);
  if (!dec) return tl::unexpected(dec.error());
  auto enc = proto::AesCtr::create(e);
  if (!enc) return tl::unexpected(enc.error());
  std::array<std::byte, proto::kInitSize> plain{};
  dec->apply(h, plain);
  std::uint32_t tag = proto::load_le32(plain.data() + 56);
  if (tag != 0xefefefefU && tag != 0xeeeeeeeeU && tag != 0xddddddddU) {
    return base::fail(Errc::kBadHandshake, "dc init: unknown tag");
  }
  return DcStreams{std::move(*dec), std::move(*enc)};
}

awaitable<void> sink(tcp::socket& s, std::vector<std::byte>& buf) {
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), kNoThrow);
    if (ec) co_return;
  }
}

awaitable<void> source(tcp::socket& s, std::vector<std::byte>& buf) {
  for (;;) {
    auto [ec, n] = co_await asio::async_write(s, asio::buffer(buf), kNoThrow);
    if (ec) co_return;
  }
}

awaitable<void> echo(tcp::socket& s, std::vector<std::byte>& buf, DcStreams* streams) {
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), kNoThrow);
    if (ec) co_return;
    if (streams != nullptr) {
      std::span<std::byte> data(buf.data(), n);
      streams->decrypt.apply(data);
      streams->encrypt.apply(data);
    }
    auto [wec, m] = co_await asio::async_write(s, asio::buffer(buf.data(), n), kNoThrow);
    if (wec) co_return;
  }
}

awaitable<void> session(tcp::socket s, const Options& opts) {
  set_nodelay(s);
  std::optional<DcStreams> streams;
  if (opts.init) {
    std::array<std::byte, proto::kInitSize> h{};
    auto [ec, n] = co_await asio::async_read(s, asio::buffer(h), kNoThrow);
    if (ec) co_return;
    auto decoded = decode_proxy_init(h);
    if (!decoded) {
      std::fprintf(stderr, "dc init rejected error=%s\n", decoded.error().to_string().c_str());
      co_return;
    }
    streams.emplace(std::move(*decoded));
  }
  std::vector<std::byte> buf(opts.chunk_bytes, std::byte{0x5a});
  switch (opts.mode) {
    case Mode::kSink:
      co_await sink(s, buf);
      break;
    case Mode::kSource:
      co_await source(s, buf);
      break;
    case Mode::kEcho:
      co_await echo(s, buf, streams ? &*streams : nullptr);
      break;
  }
}

awaitable<void> accept_loop(tcp::acceptor& acceptor, const Options& opts) {
  for (;;) {
    auto [ec, sock] = co_await acceptor.async_accept(kNoThrow);
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) continue;  // EMFILE and friends: keep serving the others
    asio::co_spawn(acceptor.get_executor(), session(std::move(sock), opts), log_exception);
  }
}

[[nodiscard]] Result<Options> parse_options(int argc, char** argv) {
  auto flags = Flags::parse(argc, argv, {"listen", "mode", "init", "chunk-kib", "max-seconds"});
  if (!flags) return tl::unexpected(flags.error());
  Options o;
  std::string mode = flags->str("mode", "sink");
  if (mode == "sink") {
    o.mode = Mode::kSink;
  } else if (mode == "source") {
    o.mode = Mode::kSource;
  } else if (mode == "echo") {
    o.mode = Mode::kEcho;
  } else {
    return base::fail(Errc::kBadInput, "--mode sink|source|echo");
  }
  std::string init = flags->str("init", "off");
  if (init != "on" && init != "off") return base::fail(Errc::kBadInput, "--init on|off");
  o.init = init == "on";
  auto listen = parse_endpoint(flags->str("listen", "127.0.0.1:0"));
  auto chunk_kib = flags->num("chunk-kib", 64);
  auto max_seconds = flags->num("max-seconds", 900);
  if (!listen || !chunk_kib || *chunk_kib < 1 || *chunk_kib > 4096 || !max_seconds) {
    return base::fail(Errc::kBadInput, "bad --listen, --chunk-kib or --max-seconds");
  }
  o.listen = *listen;
  o.chunk_bytes = static_cast<std::size_t>(*chunk_kib) * 1024;
  o.max_seconds = *max_seconds;
  return o;
}

int run(int argc, char** argv) {
  auto opts = parse_options(argc, argv);
  if (!opts) {
    std::fprintf(stderr,
                 "usage: mtw-bench-dc --listen HOST:PORT --mode sink|source|echo "
                 "[--init on|off] [--chunk-kib N] [--max-seconds S]\nerror: %s\n",
                 opts.error().to_string().c_str());
    return 2;
  }
  raise_fd_limit();
  asio::io_context io(1);
  tcp::acceptor acceptor(io, opts->listen);
  acceptor.listen(4096);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](auto, int) { io.stop(); });
  asio::steady_timer lifetime(
      io, std::chrono::milliseconds(static_cast<std::int64_t>(opts->max_seconds * 1000)));
  lifetime.async_wait([&](auto) { io.stop(); });
  std::printf("listening %u\n", acceptor.local_endpoint().port());
  std::fflush(stdout);
  asio::co_spawn(io, accept_loop(acceptor, *opts), log_exception);
  io.run();
  return 0;
}

}  // namespace
}  // namespace mtw::bench

int main(int argc, char** argv) {
  return mtw::bench::tool_main("mtw-bench-dc", mtw::bench::run, argc, argv);
}
