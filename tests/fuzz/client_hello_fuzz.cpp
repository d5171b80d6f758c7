// Fuzzes the fake-TLS ClientHello path: scan, parse, validate, SNI check,
// and for parsed hellos the server answer round trip. Invariants abort.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "proto/fake_tls.h"

namespace {

using namespace mtw::proto;

// mtg's test key (367a189a…), so the seed hellos reach the HMAC-ok path.
const SecretKey kKey = {std::byte{0x36}, std::byte{0x7a}, std::byte{0x18}, std::byte{0x9a},
                        std::byte{0xee}, std::byte{0x18}, std::byte{0xfa}, std::byte{0x31},
                        std::byte{0xc1}, std::byte{0x90}, std::byte{0x05}, std::byte{0x4e},
                        std::byte{0xfd}, std::byte{0x4a}, std::byte{0x8e}, std::byte{0x95}};

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteSpan in(reinterpret_cast<const std::byte*>(data), size);
  const auto scan = scan_client_hello(in);
  const auto hello = parse_client_hello(in);
  if (!scan) {
    require(!hello && hello.error().code == scan.error().code);
    return 0;
  }
  if (!scan->complete) {
    require(scan->needed == 0 || scan->needed > size);
    require(!hello && hello.error().code == Errc::kShortInput);
    return 0;
  }
  // A complete hello: every shorter prefix must still be "need more".
  const auto prefix = scan_client_hello(in.first(scan->needed - 1));
  require(prefix && !prefix->complete);
  if (!hello) {
    require(hello.error().code == Errc::kBadInput);
    return 0;
  }
  require(hello->consumed == scan->needed && hello->session_id_len <= 32);
  require(hello->hmac_input.size() >= kTlsHeaderSize + kMinClientHelloRecord);

  const auto ts = validate_client_hello(*hello, kKey, ClockWindow{.now = 1617181365});
  if (!ts) {
    require(ts.error().code == Errc::kBadHandshake || ts.error().code == Errc::kClockSkew);
  }
  (void)check_sni(*hello, "storage.googleapis.com");

  // The answer to any parsed hello must verify on the client side.
  SeededRandom rnd(size);
  const Bytes answer =
      build_server_hello(*hello, kKey, {.app_data_min = 1, .app_data_max = 64}, rnd);
  const auto n = verify_server_hello(answer, hello->random, kKey);
  require(n && *n == answer.size());
  return 0;
}
