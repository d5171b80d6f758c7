// mtw-bench-middle: a middle proxy for the middle-mode benchmark
// (bench/middle_bench.sh), on loopback: the server side of protocol.md §8
// built from proto/'s RPC pieces. Per connection: the worker's RPC_NONCE in
// clear, ours back, keys from both nonces and both addresses as this socket
// sees them (the server decrypts with the client's encrypt key), the
// handshake, then CRC32 frames under AES-256-CBC. Every RPC_PROXY_REQ is
// answered with an RPC_PROXY_ANS carrying its MTProto packet (echo), or
// dropped (--mode sink); RPC_PING gets RPC_PONG. Anything malformed closes
// the connection with a line on stderr.
//
//   mtw-bench-middle --secret-file F [--listen 127.0.0.1:0] [--mode echo|sink]
//                    [--max-seconds S]
// prints "listening PORT". One thread, one io_context.
#include <ctime>
#include <fstream>
#include <iterator>
#include <vector>

#include "bench/bench_net.h"
#include "proto/random.h"
#include "proto/rpc.h"
#include "proto/rpc_crypto.h"
#include "proto/rpc_frame.h"

namespace mtw::bench {
namespace {

using asio::awaitable;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr std::uint32_t kProxyReq = 0x36cef1ee;
constexpr std::uint32_t kProxyAns = 0x4403da0d;
constexpr std::uint32_t kPing = 0x5730a2df;

struct Options {
  tcp::endpoint listen;
  proto::Bytes secret;
  bool echo = true;
  double max_seconds = 900;
};

template <std::size_t N>
std::array<std::byte, N> addr_bytes(const std::array<unsigned char, N>& a) {
  std::array<std::byte, N> out{};
  for (std::size_t i = 0; i < N; ++i) out[i] = std::byte(a[i]);
  return out;
}

class Conn {
 public:
  Conn(tcp::socket s, const Options& o) : sock_(std::move(s)), opts_(o) {}

  awaitable<void> run() {
    set_nodelay(sock_);
    if (auto r = co_await handshake(); !r) {
      std::fprintf(stderr, "middle connection closed error=%s\n", r.error().to_string().c_str());
      co_return;
    }
    for (;;) {
      std::vector<proto::Bytes> payloads;
      if (auto r = co_await read_frames(payloads); !r) {
        if (r.error().code != Errc::kShortInput)
          std::fprintf(stderr, "middle connection closed error=%s\n",
                       r.error().to_string().c_str());
        co_return;
      }
      proto::Bytes out;
      for (const auto& p : payloads) {
        if (auto r = answer(p, out); !r) {
          std::fprintf(stderr, "bad message error=%s\n", r.error().to_string().c_str());
          co_return;
        }
      }
      if (out.empty()) continue;
      if (auto r = enc_.apply(out); !r) co_return;
      auto [ec, n] = co_await asio::async_write(sock_, asio::buffer(out), kNoThrow);
      if (ec) co_return;
    }
  }

 private:
  // Reads until at least one whole frame is decoded (decrypting once the keys exist).
  awaitable<Result<void>> read_frames(std::vector<proto::Bytes>& payloads) {
    for (;;) {
      auto used = decoder_.decode(plain_, [&](std::int32_t, proto::ByteSpan p) {
        payloads.emplace_back(p.begin(), p.end());
      });
      if (!used) co_return tl::unexpected(used.error());
      plain_.erase(plain_.begin(), plain_.begin() + static_cast<std::ptrdiff_t>(*used));
      if (!payloads.empty()) co_return Result<void>{};
      auto [ec, n] = co_await sock_.async_read_some(asio::buffer(chunk_), kNoThrow);
      if (ec) co_return base::fail(Errc::kShortInput, "closed");
      if (!dec_.valid()) {
        plain_.insert(plain_.end(), chunk_.begin(),
                      chunk_.begin() + static_cast<std::ptrdiff_t>(n));
        continue;
      }
      raw_.insert(raw_.end(), chunk_.begin(), chunk_.begin() + static_cast<std::ptrdiff_t>(n));
      const std::size_t whole = raw_.size() & ~std::size_t{15};
      if (whole == 0) continue;
      if (auto r = dec_.apply({raw_.data(), whole}); !r) co_return tl::unexpected(r.error());
      plain_.insert(plain_.end(), raw_.begin(), raw_.begin() + static_cast<std::ptrdiff_t>(whole));
      raw_.erase(raw_.begin(), raw_.begin() + static_cast<std::ptrdiff_t>(whole));
    }
  }

  awaitable<Result<void>> handshake() {
    std::vector<proto::Bytes> got;
    if (auto r = co_await read_frames(got); !r) co_return r;
    auto theirs = proto::parse_rpc_nonce(got.front(), opts_.secret);
    if (!theirs) co_return tl::unexpected(theirs.error());
    proto::RpcNonceBytes ours{};
    proto::system_random().fill(ours);
    auto nonce = proto::build_rpc_nonce(opts_.secret, theirs->crypto_ts, ours);
    if (!nonce) co_return tl::unexpected(nonce.error());
    proto::Bytes out;
    if (auto r = encoder_.encode(*nonce, out); !r) co_return r;
    if (auto [ec, n] = co_await asio::async_write(sock_, asio::buffer(out), kNoThrow); ec)
      co_return base::fail(Errc::kShortInput, "closed");
    // Bytes after the client's nonce frame (clear padding words, then the
    // encrypted handshake) are handled by the decoder and the cipher.
    raw_ = std::move(plain_);
    plain_.clear();
    while (raw_.size() >= 4 && proto::load_le32(raw_.data()) == 4)
      raw_.erase(raw_.begin(), raw_.begin() + 4);
    const auto local = sock_.local_endpoint();
    const auto peer = sock_.remote_endpoint();
    proto::RpcKdfInput in;
    in.server_nonce = ours;
    in.client_nonce = theirs->nonce;
    in.client_ts = theirs->crypto_ts;
    in.proxy_secret = opts_.secret;
    in.server_port = local.port();
    in.client_port = peer.port();
    if (local.address().is_v4()) {
      in.server_ip4 = addr_bytes(local.address().to_v4().to_bytes());
      in.client_ip4 = addr_bytes(peer.address().to_v4().to_bytes());
    } else {
      in.ipv6 = true;
      in.server_ip6 = addr_bytes(local.address().to_v6().to_bytes());
      in.client_ip6 = addr_bytes(peer.address().to_v6().to_bytes());
    }
    const auto keys = proto::derive_rpc_session_keys(in);  // the client's view
    auto dec = proto::AesCbc::create(keys.encrypt, proto::AesCbc::Mode::kDecrypt);
    auto enc = proto::AesCbc::create(keys.decrypt, proto::AesCbc::Mode::kEncrypt);
    if (!dec || !enc) co_return base::fail(Errc::kInternal, "cipher");
    dec_ = std::move(*dec);
    enc_ = std::move(*enc);
    {  // whole blocks already here
      const std::size_t whole = raw_.size() & ~std::size_t{15};
      if (whole != 0) {
        if (auto r = dec_.apply({raw_.data(), whole}); !r) co_return r;
        plain_.insert(plain_.end(), raw_.begin(),
                      raw_.begin() + static_cast<std::ptrdiff_t>(whole));
        raw_.erase(raw_.begin(), raw_.begin() + static_cast<std::ptrdiff_t>(whole));
      }
    }
    got.clear();
    if (auto r = co_await read_frames(got); !r) co_return r;
    const auto pid = proto::default_rpc_pid();
    auto peer_pid = proto::parse_rpc_handshake(got.front(), pid);
    if (!peer_pid) co_return tl::unexpected(peer_pid.error());
    out.clear();
    if (auto r = encoder_.encode(proto::build_rpc_handshake(pid, *peer_pid), out); !r) co_return r;
    if (auto r = enc_.apply(out); !r) co_return r;
    if (auto [ec, n] = co_await asio::async_write(sock_, asio::buffer(out), kNoThrow); ec)
      co_return base::fail(Errc::kShortInput, "closed");
    got.erase(got.begin());
    proto::Bytes answers;
    for (const auto& p : got)
      if (auto r = answer(p, answers); !r) co_return r;
    if (!answers.empty()) {
      if (auto r = enc_.apply(answers); !r) co_return r;
      if (auto [ec, n] = co_await asio::async_write(sock_, asio::buffer(answers), kNoThrow); ec)
        co_return base::fail(Errc::kShortInput, "closed");
    }
    co_return Result<void>{};
  }

  // Appends the framed (not yet encrypted) answer to one message.
  Result<void> answer(proto::ByteSpan p, proto::Bytes& out) {
    if (p.size() < 4) return base::fail(Errc::kBadInput, "short message");
    const std::uint32_t type = proto::load_le32(p.data());
    if (type == kPing && p.size() == 12) {
      const std::uint64_t id =
          proto::load_le32(p.data() + 4) | std::uint64_t{proto::load_le32(p.data() + 8)} << 32;
      return encoder_.encode(proto::build_pong(id), out);
    }
    if (type != kProxyReq) return {};  // CLOSE_CONN and others: nothing to say
    if (p.size() < 56) return base::fail(Errc::kBadInput, "short PROXY_REQ");
    const std::uint32_t flags = proto::load_le32(p.data() + 4);
    std::size_t off = 56;
    if ((flags & 0xc) != 0) {
      if (p.size() < off + 4) return base::fail(Errc::kBadInput, "short extra");
      off += 4 + proto::load_le32(p.data() + off);
      if (off > p.size()) return base::fail(Errc::kBadInput, "bad extra length");
    }
    if (!opts_.echo) return {};
    ans_.resize(16 + (p.size() - off));
    proto::store_le32(ans_.data(), kProxyAns);
    proto::store_le32(ans_.data() + 4, 0);
    std::copy(p.begin() + 8, p.begin() + 16, ans_.begin() + 8);  // conn_id
    std::copy(p.begin() + static_cast<std::ptrdiff_t>(off), p.end(), ans_.begin() + 16);
    return encoder_.encode(ans_, out);
  }

  tcp::socket sock_;
  const Options& opts_;
  proto::RpcFrameEncoder encoder_;
  proto::RpcFrameDecoder decoder_;
  proto::AesCbc enc_, dec_;
  proto::Bytes raw_, plain_, ans_;
  std::vector<std::byte> chunk_ = std::vector<std::byte>(64 * 1024);
};

awaitable<void> accept_loop(tcp::acceptor& acceptor, const Options& opts) {
  for (;;) {
    auto [ec, sock] = co_await acceptor.async_accept(kNoThrow);
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) continue;
    auto conn = std::make_shared<Conn>(std::move(sock), opts);
    asio::co_spawn(
        acceptor.get_executor(), [conn]() -> awaitable<void> { co_await conn->run(); },
        log_exception);
  }
}

[[nodiscard]] Result<Options> parse_options(int argc, char** argv) {
  auto flags = Flags::parse(argc, argv, {"listen", "mode", "secret-file", "max-seconds"});
  if (!flags) return tl::unexpected(flags.error());
  Options o;
  const std::string mode = flags->str("mode", "echo");
  if (mode != "echo" && mode != "sink") return base::fail(Errc::kBadInput, "--mode echo|sink");
  o.echo = mode == "echo";
  std::ifstream in(flags->str("secret-file"), std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (s.size() < 32) return base::fail(Errc::kBadInput, "--secret-file: want 32+ bytes");
  for (char c : s) o.secret.push_back(static_cast<std::byte>(c));
  auto listen = parse_endpoint(flags->str("listen", "127.0.0.1:0"));
  auto max_seconds = flags->num("max-seconds", 900);
  if (!listen || !max_seconds) return base::fail(Errc::kBadInput, "bad --listen or --max-seconds");
  o.listen = *listen;
  o.max_seconds = *max_seconds;
  return o;
}

int run(int argc, char** argv) {
  auto opts = parse_options(argc, argv);
  if (!opts) {
    std::fprintf(stderr,
                 "usage: mtw-bench-middle --secret-file F [--listen HOST:PORT] "
                 "[--mode echo|sink] [--max-seconds S]\nerror: %s\n",
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
  return mtw::bench::tool_main("mtw-bench-middle", mtw::bench::run, argc, argv);
}
