// The client side of mtw-bench-loadgen: connecting from one of several
// loopback source addresses, the MTProxy client handshakes (obfuscated2
// ef/ee/dd, fake TLS + dd) built with proto/'s client-side helpers, and a
// verified echo round trip. Benchmark tool code; single-threaded (one
// io_context); a ClientConn belongs to the coroutine that holds it.
#pragma once

#include <memory>

#include "bench/bench_net.h"
#include "proto/aes_ctr.h"
#include "proto/bytes.h"
#include "proto/secret.h"

namespace mtw::bench {

inline constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

enum class ProtoKind { kRaw, kAbridged, kIntermediate, kPadded, kTls };

struct ClientConfig {
  tcp::endpoint target;
  ProtoKind proto = ProtoKind::kRaw;
  proto::Secret secret;  // unused for kRaw; must be a fake-TLS secret for kTls
  std::int16_t dc = 2;
  unsigned sources = 1;  // client sockets bind to 127.0.0.1 .. 127.0.0.<sources>
  std::size_t chunk_bytes = kDefaultChunkBytes;
  double connect_timeout_s = 10;  // per connection: connect + handshake + echo
};

// One established client connection. `encrypt`/`decrypt` are empty for kRaw.
struct ClientConn {
  explicit ClientConn(tcp::socket s) : sock(std::move(s)) {}
  tcp::socket sock;
  proto::AesCtr encrypt;
  proto::AesCtr decrypt;
  proto::Bytes rx;  // TLS bytes read but not yet consumed as whole records
};

const char* proto_name(ProtoKind p) noexcept;

// Reads --target, --proto raw|ef|ee|dd|tls, --secret, --dc, --sources, --chunk-kib.
[[nodiscard]] Result<ClientConfig> parse_client_config(const Flags& flags);

// Connects (source address picked by `index`), runs the handshake and, with
// `echo`, one echo round trip whose plaintext is checked. Errors: kSyscall
// (socket errors, with errno), kBadHandshake (ServerHello HMAC, echo mismatch),
// kTimeout (cfg.connect_timeout_s passed).
asio::awaitable<Result<std::unique_ptr<ClientConn>>> open_client(const ClientConfig& cfg,
                                                                 std::size_t index, bool echo);

// What an upload loop writes over and over: plain bytes, or for kTls whole
// application-data records (the payload is noise; nobody parses it).
proto::Bytes upload_chunk(const ClientConfig& cfg);

}  // namespace mtw::bench
