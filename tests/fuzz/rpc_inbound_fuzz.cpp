// Fuzzes the parsers of what a middle proxy sends: parse_rpc_inbound,
// parse_rpc_nonce and parse_rpc_handshake. Properties: an accepted message
// has exactly the layout of its type (re-serialised here, it equals the
// input), and a PROXY_ANS's data is the input's tail, not a copy or an
// overrun.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <variant>

#include "proto/rpc.h"

namespace {

using namespace mtw::proto;

void put32(Bytes& b, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(std::byte((v >> (8 * i)) & 0xff));
}
void put64(Bytes& b, std::uint64_t v) {
  put32(b, static_cast<std::uint32_t>(v));
  put32(b, static_cast<std::uint32_t>(v >> 32));
}

Bytes serialise(const RpcInbound& m) {
  Bytes b;
  if (const auto* a = std::get_if<RpcProxyAns>(&m)) {
    put32(b, kRpcProxyAns);
    put32(b, a->flags);
    put64(b, a->conn_id);
    b.insert(b.end(), a->data.begin(), a->data.end());
  } else if (const auto* s = std::get_if<RpcSimpleAck>(&m)) {
    put32(b, kRpcSimpleAck);
    put64(b, s->conn_id);
    b.insert(b.end(), s->confirm.begin(), s->confirm.end());
  } else if (const auto* c = std::get_if<RpcCloseExt>(&m)) {
    put32(b, kRpcCloseExt);
    put64(b, c->conn_id);
  } else if (const auto* p = std::get_if<RpcPing>(&m)) {
    put32(b, kRpcPing);
    put64(b, p->ping_id);
  }
  return b;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteSpan in(reinterpret_cast<const std::byte*>(data), size);
  if (const auto m = parse_rpc_inbound(in)) {
    const Bytes again = serialise(*m);
    if (again.size() != size || std::memcmp(again.data(), data, size) != 0) std::abort();
    if (const auto* a = std::get_if<RpcProxyAns>(&*m)) {
      if (a->data.data() != in.data() + 16 || a->data.size() != size - 16) std::abort();
    }
  }
  // The first 4 bytes double as the proxy secret's key selector.
  if (const auto n = parse_rpc_nonce(in, in.first(std::min<std::size_t>(size, 4)))) {
    if (size != kRpcNonceSize || n->schema != kRpcCryptoAes) std::abort();
  }
  if (const auto pid = parse_rpc_handshake(in, default_rpc_pid())) {
    if (size != kRpcHandshakeSize) std::abort();
    if (std::memcmp(data + 20, default_rpc_pid().data(), 12) != 0) std::abort();
    if (std::memcmp(data + 8, pid->data(), 12) != 0) std::abort();
  }
  return 0;
}
