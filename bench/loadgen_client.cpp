// See loadgen_client.h.
#include "bench/loadgen_client.h"

#include <algorithm>
#include <ctime>

#include "proto/fake_tls.h"
#include "proto/obfs2.h"
#include "proto/random.h"

namespace mtw::bench {
namespace {

using asio::awaitable;

tl::unexpected<base::Error> sys_fail(const char* what, const boost::system::error_code& ec) {
  return tl::unexpected(base::Error{Errc::kSyscall, ec.value(), what});
}

awaitable<Result<void>> connect_from(tcp::socket& sock, const ClientConfig& cfg,
                                     std::size_t index) {
  boost::system::error_code ec;
  sock.open(cfg.target.protocol(), ec);
  if (ec) co_return sys_fail("socket", ec);
  if (cfg.target.address().is_v4() && cfg.sources > 1) {
    set_bind_no_port(sock);
    auto src = asio::ip::make_address_v4(0x7f000001U + static_cast<unsigned>(index % cfg.sources));
    sock.bind(tcp::endpoint(src, 0), ec);
    if (ec) co_return sys_fail("bind", ec);
  }
  auto [cec] = co_await sock.async_connect(cfg.target, kNoThrow);
  if (cec) co_return sys_fail("connect", cec);
  set_nodelay(sock);
  co_return Result<void>{};
}

proto::ProtoTag tag_for(ProtoKind p) {
  switch (p) {
    case ProtoKind::kAbridged:
      return proto::ProtoTag::kAbridged;
    case ProtoKind::kIntermediate:
      return proto::ProtoTag::kIntermediate;
    default:
      return proto::ProtoTag::kPadded;  // dd, and dd inside fake TLS
  }
}

// Builds an obfuscated2 init, installs the client's streams in `c`, returns the wire bytes.
[[nodiscard]] Result<std::array<std::byte, proto::kInitSize>> make_init(ClientConn& c,
                                                                        const ClientConfig& cfg) {
  auto init =
      proto::build_client_init(cfg.secret.key, tag_for(cfg.proto), cfg.dc, proto::system_random());
  auto streams = proto::make_client_side_streams(init);
  if (!streams) return tl::unexpected(streams.error());
  c.encrypt = std::move(streams->encrypt);
  c.decrypt = std::move(streams->decrypt);
  return init.wire;
}

// ClientHello, then the three-record answer checked with the secret's HMAC,
// then CCS and the obfuscated2 init in the first application-data record.
awaitable<Result<void>> tls_handshake(ClientConn& c, const ClientConfig& cfg) {
  proto::Bytes hello =
      proto::build_client_hello(cfg.secret, std::time(nullptr), proto::system_random());
  std::array<std::byte, 32> client_random{};
  std::copy(hello.begin() + 11, hello.begin() + 43, client_random.begin());
  auto [wec, wn] = co_await asio::async_write(c.sock, asio::buffer(hello), kNoThrow);
  if (wec) co_return sys_fail("write hello", wec);
  std::array<std::byte, 4096> buf{};
  for (;;) {
    auto v = proto::verify_server_hello(c.rx, client_random, cfg.secret.key);
    if (v) {
      c.rx.erase(c.rx.begin(), c.rx.begin() + static_cast<std::ptrdiff_t>(*v));
      break;
    }
    if (v.error().code != Errc::kShortInput || c.rx.size() > 64 * 1024) {
      co_return tl::unexpected(v.error());
    }
    auto [rec, n] = co_await c.sock.async_read_some(asio::buffer(buf), kNoThrow);
    if (rec) co_return sys_fail("read server hello", rec);
    c.rx.insert(c.rx.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
  }
  auto init = make_init(c, cfg);
  if (!init) co_return tl::unexpected(init.error());
  proto::Bytes out = {std::byte{0x14}, std::byte{0x03}, std::byte{0x03},
                      std::byte{0x00}, std::byte{0x01}, std::byte{0x01}};
  proto::write_tls_records(*init, out);
  auto [ec, n] = co_await asio::async_write(c.sock, asio::buffer(out), kNoThrow);
  if (ec) co_return sys_fail("write init", ec);
  co_return Result<void>{};
}

awaitable<Result<void>> handshake(ClientConn& c, const ClientConfig& cfg) {
  if (cfg.proto == ProtoKind::kRaw) co_return Result<void>{};
  if (cfg.proto == ProtoKind::kTls) co_return co_await tls_handshake(c, cfg);
  auto init = make_init(c, cfg);
  if (!init) co_return tl::unexpected(init.error());
  auto [ec, n] = co_await asio::async_write(c.sock, asio::buffer(*init), kNoThrow);
  if (ec) co_return sys_fail("write init", ec);
  co_return Result<void>{};
}

// One 16-byte packet in the connection's framing (abridged: length/4 byte;
// intermediate and padded: u32 length) so a parsing relay would accept it too.
proto::Bytes echo_packet(ProtoKind p) {
  proto::Bytes out;
  if (p == ProtoKind::kAbridged) {
    out.push_back(std::byte{4});
  } else {
    out.resize(4);
    proto::store_le32(out.data(), 16);
  }
  for (int i = 0; i < 16; ++i) out.push_back(std::byte(0xa0 + i));
  return out;
}

// Reads exactly `n` payload bytes: raw stream bytes, or TLS record payloads.
awaitable<Result<proto::Bytes>> read_payload(ClientConn& c, bool tls, std::size_t n) {
  proto::Bytes got;
  std::array<std::byte, 4096> buf{};
  for (;;) {
    if (tls) {
      auto used = proto::read_tls_records(
          c.rx, [&](proto::ByteSpan p) { got.insert(got.end(), p.begin(), p.end()); });
      if (!used) co_return tl::unexpected(used.error());
      c.rx.erase(c.rx.begin(), c.rx.begin() + static_cast<std::ptrdiff_t>(*used));
    }
    if (got.size() >= n) break;
    auto [ec, m] = co_await c.sock.async_read_some(asio::buffer(buf), kNoThrow);
    if (ec) co_return sys_fail("read echo", ec);
    auto* end = buf.begin() + static_cast<std::ptrdiff_t>(m);
    if (tls) {
      c.rx.insert(c.rx.end(), buf.begin(), end);
    } else {
      got.insert(got.end(), buf.begin(), end);
    }
  }
  if (got.size() != n) co_return base::fail(Errc::kBadHandshake, "echo: extra bytes");
  co_return got;
}

awaitable<Result<void>> echo_round_trip(ClientConn& c, const ClientConfig& cfg) {
  const proto::Bytes plain = echo_packet(cfg.proto);
  proto::Bytes wire = plain;
  if (c.encrypt.valid()) c.encrypt.apply(wire);
  const bool tls = cfg.proto == ProtoKind::kTls;
  if (tls) {
    proto::Bytes records;
    proto::write_tls_records(wire, records);
    wire = std::move(records);
  }
  auto [ec, n] = co_await asio::async_write(c.sock, asio::buffer(wire), kNoThrow);
  if (ec) co_return sys_fail("write echo", ec);
  if (cfg.proto == ProtoKind::kPadded && !tls && c.decrypt.valid()) {
    // A relay that re-frames (middle-proxy mode) pads the answer with 0..15
    // random bytes, as padded intermediate allows: the length says how many.
    proto::Bytes head(4);
    auto [hec, hn] = co_await asio::async_read(c.sock, asio::buffer(head), kNoThrow);
    if (hec) co_return sys_fail("read echo", hec);
    c.decrypt.apply(head);
    const std::uint32_t len = proto::load_le32(head.data());
    if (len < 16 || len > 16 + 15) co_return base::fail(Errc::kBadHandshake, "echo: bad length");
    proto::Bytes body(len);
    auto [bec, bn] = co_await asio::async_read(c.sock, asio::buffer(body), kNoThrow);
    if (bec) co_return sys_fail("read echo", bec);
    c.decrypt.apply(body);
    if (!std::equal(plain.begin() + 4, plain.end(), body.begin()))
      co_return base::fail(Errc::kBadHandshake, "echo: bytes differ");
    co_return Result<void>{};
  }
  auto got = co_await read_payload(c, tls, plain.size());
  if (!got) co_return tl::unexpected(got.error());
  if (c.decrypt.valid()) c.decrypt.apply(*got);
  if (*got != plain) co_return base::fail(Errc::kBadHandshake, "echo: bytes differ");
  co_return Result<void>{};
}

}  // namespace

const char* proto_name(ProtoKind p) noexcept {
  switch (p) {
    case ProtoKind::kRaw:
      return "raw";
    case ProtoKind::kAbridged:
      return "ef";
    case ProtoKind::kIntermediate:
      return "ee";
    case ProtoKind::kPadded:
      return "dd";
    case ProtoKind::kTls:
      return "tls";
  }
  return "?";
}

Result<ClientConfig> parse_client_config(const Flags& flags) {
  ClientConfig cfg;
  auto target = parse_endpoint(flags.str("target"));
  if (!target) return base::fail(Errc::kBadInput, "need --target HOST:PORT");
  cfg.target = *target;
  std::string p = flags.str("proto", "raw");
  const ProtoKind kinds[] = {ProtoKind::kRaw, ProtoKind::kAbridged, ProtoKind::kIntermediate,
                             ProtoKind::kPadded, ProtoKind::kTls};
  auto it = std::find_if(std::begin(kinds), std::end(kinds),
                         [&](ProtoKind k) { return p == proto_name(k); });
  if (it == std::end(kinds)) return base::fail(Errc::kBadInput, "--proto raw|ef|ee|dd|tls");
  cfg.proto = *it;
  if (cfg.proto != ProtoKind::kRaw) {
    auto secret = proto::parse_secret(flags.str("secret"));
    if (!secret) return base::fail(Errc::kBadInput, "--secret: " + secret.error().context);
    cfg.secret = std::move(*secret);
    if (cfg.proto == ProtoKind::kTls && cfg.secret.kind != proto::SecretKind::kFakeTls) {
      return base::fail(Errc::kBadInput, "--proto tls needs an ee secret with a domain");
    }
  }
  auto dc = flags.num("dc", 2), sources = flags.num("sources", 1);
  auto chunk_kib = flags.num("chunk-kib", 64);
  if (!dc || !sources || !chunk_kib || *sources < 1 || *sources > 250 || *chunk_kib < 1 ||
      *chunk_kib > 4096) {
    return base::fail(Errc::kBadInput, "bad --dc, --sources or --chunk-kib");
  }
  cfg.dc = static_cast<std::int16_t>(*dc);
  cfg.sources = static_cast<unsigned>(*sources);
  cfg.chunk_bytes = static_cast<std::size_t>(*chunk_kib) * 1024;
  return cfg;
}

awaitable<Result<std::unique_ptr<ClientConn>>> open_client(const ClientConfig& cfg,
                                                           std::size_t index, bool echo) {
  auto exec = co_await asio::this_coro::executor;
  auto c = std::make_unique<ClientConn>(tcp::socket(exec));
  bool expired = false;
  asio::steady_timer deadline(
      exec, std::chrono::milliseconds(static_cast<std::int64_t>(cfg.connect_timeout_s * 1000)));
  deadline.async_wait([&expired, sock = &c->sock](boost::system::error_code ec) {
    if (ec) return;  // cancelled: finished in time (and `sock` may be gone)
    expired = true;
    sock->close(ec);
  });
  auto r = co_await connect_from(c->sock, cfg, index);
  if (r) r = co_await handshake(*c, cfg);
  if (r && echo) r = co_await echo_round_trip(*c, cfg);
  deadline.cancel();
  if (expired) co_return base::fail(Errc::kTimeout, "connect/handshake/echo deadline");
  if (!r) co_return tl::unexpected(r.error());
  co_return std::move(c);
}

proto::Bytes upload_chunk(const ClientConfig& cfg) {
  proto::Bytes noise(cfg.chunk_bytes, std::byte{0x5a});
  if (cfg.proto != ProtoKind::kTls) return noise;
  // Whole max-size records, about chunk_bytes in total.
  std::size_t records = std::max<std::size_t>(1, cfg.chunk_bytes / 16384);
  noise.resize(records * proto::kMaxTlsWritePayload);
  proto::Bytes out;
  proto::write_tls_records(noise, out);
  return out;
}

}  // namespace mtw::bench
