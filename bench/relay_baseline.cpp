// mtw-bench-relay: the two baselines the worker is measured against
// (issue 4, "Speed and memory"), on loopback only.
//   --mode plain   accept, connect upstream, copy both ways: the ceiling (a).
//   --mode crypto  the same plus exactly the unavoidable crypto, AES-256-CTR
//                  decrypt and encrypt of every byte in each direction
//                  (proto::AesCtr): the practical limit (b).
// Same I/O shape as a good Asio relay: one thread, one io_context, one C++20
// coroutine per direction, one fixed buffer per direction (--chunk-kib,
// default 64), TCP_NODELAY. Bytes are relayed unparsed; crypto mode uses random
// keys, so what reaches upstream is noise, which sink/source peers don't mind.
// --buffers wait|lease change the buffer strategy to diagnose a relay's I/O
// structure (bench/README.md); the baselines use the default, fixed.
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <cstdio>
#include <memory>
#include <tuple>
#include <vector>

#include "bench/bench_net.h"
#include "proto/aes_ctr.h"
#include "proto/random.h"

namespace mtw::bench {
namespace {

using asio::awaitable;
using asio::use_awaitable;
using namespace asio::experimental::awaitable_operators;
constexpr auto kNoThrow = asio::as_tuple(use_awaitable);

// How a direction gets its buffer. kFixed is the baseline; the others are for
// diagnosing a relay (bench/README.md), not baselines:
//   kWaitEachRead  async_wait(wait_read) before every read. Asio's epoll
//                  reactor never runs a wait speculatively: epoll_ctl +
//                  epoll_wait per chunk.
//   kLease         no buffer while idle; borrow one when readable, keep it
//                  while non-blocking reads return data, give it back on
//                  would_block.
//   kLeaseShort    kLease, but a short read (less than a chunk: the socket
//                  was drained) gives the buffer back and waits at once,
//                  without the read that would return would_block (what
//                  Asio's own reads do after a short read). For diagnosis
//                  only: a FIN that came with the short read's data is seen
//                  only at the next readiness event.
enum class Buffers { kFixed, kWaitEachRead, kLease, kLeaseShort };

struct Options {
  bool crypto = false;
  tcp::endpoint listen;
  tcp::endpoint upstream;
  std::size_t chunk_bytes = kDefaultChunkBytes;
  Buffers buffers = Buffers::kFixed;
};

// The two keystreams one direction pays for: the inbound side's decrypt and
// the outbound side's encrypt.
struct DirectionCrypto {
  proto::AesCtr decrypt;
  proto::AesCtr encrypt;
};

[[nodiscard]] Result<DirectionCrypto> random_direction_crypto() {
  proto::CipherParams a, b;
  proto::system_random().fill(a.key);
  proto::system_random().fill(a.iv);
  proto::system_random().fill(b.key);
  proto::system_random().fill(b.iv);
  auto dec = proto::AesCtr::create(a);
  if (!dec) return tl::unexpected(dec.error());
  auto enc = proto::AesCtr::create(b);
  if (!enc) return tl::unexpected(enc.error());
  return DirectionCrypto{std::move(*dec), std::move(*enc)};
}

// Free chunks shared by all sessions of the (single) thread, for
// --buffers lease: a direction holds one only while it has bytes in flight.
class ChunkPool {
 public:
  explicit ChunkPool(std::size_t bytes) : bytes_(bytes) {}
  std::unique_ptr<std::byte[]> take() {
    // Zeroed, so a fixed-buffer relay pays its real RSS (untouched pages would not count).
    if (free_.empty()) return std::make_unique<std::byte[]>(bytes_);
    auto chunk = std::move(free_.back());
    free_.pop_back();
    return chunk;
  }
  void give(std::unique_ptr<std::byte[]> chunk) {
    if (chunk && free_.size() < kMaxFree) free_.push_back(std::move(chunk));
  }

 private:
  static constexpr std::size_t kMaxFree = 256;
  std::size_t bytes_;
  std::vector<std::unique_ptr<std::byte[]>> free_;
};

// End of one direction: EOF half-closes `to` so the peer sees the end; any
// other error closes both sockets, which also ends the opposite pump.
void finish(tcp::socket& from, tcp::socket& to, const boost::system::error_code& ec) {
  boost::system::error_code ignored;
  if (ec == asio::error::eof) {
    to.shutdown(tcp::socket::shutdown_send, ignored);
    return;
  }
  from.close(ignored);
  to.close(ignored);
}

// Lease mode: waits for readability without a buffer, then reads with a
// non-blocking read_some while data keeps coming and gives the chunk back
// on would_block. Returns bytes read into `buf` (0 with `ec` set on error).
awaitable<std::size_t> lease_read(tcp::socket& from, std::unique_ptr<std::byte[]>& buf,
                                  ChunkPool& pool, std::size_t chunk_bytes,
                                  boost::system::error_code& ec) {
  for (;;) {
    if (!buf) {
      auto [wec] = co_await from.async_wait(tcp::socket::wait_read, kNoThrow);
      ec = wec;
      if (ec) co_return 0;
      buf = pool.take();
    }
    std::size_t n = from.read_some(asio::buffer(buf.get(), chunk_bytes), ec);
    if (ec != asio::error::would_block) co_return n;
    pool.give(std::move(buf));
  }
}

// Copies `from` -> `to` until EOF or error (see finish()).
awaitable<void> pump(tcp::socket& from, tcp::socket& to, DirectionCrypto* crypto,
                     const Options& opts, ChunkPool& pool) {
  std::unique_ptr<std::byte[]> buf;
  const bool lease = opts.buffers == Buffers::kLease || opts.buffers == Buffers::kLeaseShort;
  if (!lease) buf = pool.take();
  boost::system::error_code ec;
  for (;;) {
    std::size_t n = 0;
    if (lease) {
      n = co_await lease_read(from, buf, pool, opts.chunk_bytes, ec);
    } else {
      if (opts.buffers == Buffers::kWaitEachRead) {
        std::tie(ec) = co_await from.async_wait(tcp::socket::wait_read, kNoThrow);
        if (ec) break;
      }
      std::tie(ec, n) =
          co_await from.async_read_some(asio::buffer(buf.get(), opts.chunk_bytes), kNoThrow);
    }
    if (ec) break;
    if (crypto != nullptr) {
      std::span<std::byte> data(buf.get(), n);
      crypto->decrypt.apply(data);
      crypto->encrypt.apply(data);
    }
    const bool drained = n < opts.chunk_bytes;
    std::tie(ec, n) = co_await asio::async_write(to, asio::buffer(buf.get(), n), kNoThrow);
    if (ec) break;
    if (opts.buffers == Buffers::kLeaseShort && drained) pool.give(std::move(buf));
  }
  if (buf) pool.give(std::move(buf));
  finish(from, to, ec);
}

awaitable<void> session(tcp::socket client, Options opts, ChunkPool& pool) {
  tcp::socket upstream(client.get_executor());
  auto [ec] = co_await upstream.async_connect(opts.upstream, kNoThrow);
  if (ec) {
    std::fprintf(stderr, "upstream connect failed error=%s\n", ec.message().c_str());
    co_return;
  }
  set_nodelay(client);
  set_nodelay(upstream);
  std::unique_ptr<DirectionCrypto> up, down;
  if (opts.crypto) {
    auto u = random_direction_crypto();
    auto d = random_direction_crypto();
    if (!u || !d) {
      std::fprintf(stderr, "cipher setup failed\n");
      co_return;
    }
    up = std::make_unique<DirectionCrypto>(std::move(*u));
    down = std::make_unique<DirectionCrypto>(std::move(*d));
  }
  if (opts.buffers == Buffers::kLease || opts.buffers == Buffers::kLeaseShort) {
    client.non_blocking(true);
    upstream.non_blocking(true);
  }
  co_await (pump(client, upstream, up.get(), opts, pool) &&
            pump(upstream, client, down.get(), opts, pool));
}

awaitable<void> accept_loop(tcp::acceptor& acceptor, Options opts) {
  ChunkPool pool(opts.chunk_bytes);
  for (;;) {
    auto [ec, sock] = co_await acceptor.async_accept(kNoThrow);
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) continue;  // EMFILE and friends: keep serving the others
    asio::co_spawn(acceptor.get_executor(), session(std::move(sock), opts, pool), log_exception);
  }
}

[[nodiscard]] Result<Options> parse_options(int argc, char** argv) {
  auto flags = Flags::parse(argc, argv, {"mode", "listen", "upstream", "chunk-kib", "buffers"});
  if (!flags) return tl::unexpected(flags.error());
  Options o;
  std::string mode = flags->str("mode", "plain");
  if (mode != "plain" && mode != "crypto")
    return base::fail(Errc::kBadInput, "--mode plain|crypto");
  o.crypto = mode == "crypto";
  std::string buffers = flags->str("buffers", "fixed");
  if (buffers == "fixed") {
    o.buffers = Buffers::kFixed;
  } else if (buffers == "wait") {
    o.buffers = Buffers::kWaitEachRead;
  } else if (buffers == "lease") {
    o.buffers = Buffers::kLease;
  } else if (buffers == "lease-short") {
    o.buffers = Buffers::kLeaseShort;
  } else {
    return base::fail(Errc::kBadInput, "--buffers fixed|wait|lease|lease-short");
  }
  auto listen = parse_endpoint(flags->str("listen", "127.0.0.1:0"));
  auto upstream = parse_endpoint(flags->str("upstream"));
  auto chunk_kib = flags->num("chunk-kib", 64);
  if (!listen || !upstream || !chunk_kib || *chunk_kib < 1 || *chunk_kib > 4096) {
    return base::fail(Errc::kBadInput, "need --listen HOST:PORT --upstream HOST:PORT");
  }
  o.listen = *listen;
  o.upstream = *upstream;
  o.chunk_bytes = static_cast<std::size_t>(*chunk_kib) * 1024;
  return o;
}

int run(int argc, char** argv) {
  auto opts = parse_options(argc, argv);
  if (!opts) {
    std::fprintf(stderr,
                 "usage: mtw-bench-relay --mode plain|crypto --listen HOST:PORT "
                 "--upstream HOST:PORT [--chunk-kib N] [--buffers "
                 "fixed|wait|lease|lease-short]\nerror: %s\n",
                 opts.error().to_string().c_str());
    return 2;
  }
  raise_fd_limit();
  asio::io_context io(1);
  tcp::acceptor acceptor(io, opts->listen);
  acceptor.listen(4096);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](auto, int) { io.stop(); });
  std::printf("listening %s:%u\n", acceptor.local_endpoint().address().to_string().c_str(),
              acceptor.local_endpoint().port());
  std::fflush(stdout);
  asio::co_spawn(io, accept_loop(acceptor, *opts), asio::detached);
  io.run();
  return 0;
}

}  // namespace
}  // namespace mtw::bench

int main(int argc, char** argv) {
  return mtw::bench::tool_main("mtw-bench-relay", mtw::bench::run, argc, argv);
}
