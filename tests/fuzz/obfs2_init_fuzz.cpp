// Fuzzes parse_client_init with a fixed secret (mtg's snapshot secret, so the
// seed corpus holds real inits); bytes after the first 64 go through the
// resulting decrypt stream, as the worker would feed them.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "proto/obfs2.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mtw::proto;
  if (size < kInitSize) return 0;
  // 367a189aee18fa31c190054efd4a8e95
  static const SecretKey kSecret = {
      std::byte{0x36}, std::byte{0x7a}, std::byte{0x18}, std::byte{0x9a},
      std::byte{0xee}, std::byte{0x18}, std::byte{0xfa}, std::byte{0x31},
      std::byte{0xc1}, std::byte{0x90}, std::byte{0x05}, std::byte{0x4e},
      std::byte{0xfd}, std::byte{0x4a}, std::byte{0x8e}, std::byte{0x95}};
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  const auto init =
      parse_client_init(std::span<const std::byte, kInitSize>(bytes, kInitSize), kSecret);
  if (!init) {
    if (init.error().code != Errc::kBadHandshake) std::abort();
    return 0;
  }
  if (init->tag != ProtoTag::kAbridged && init->tag != ProtoTag::kIntermediate &&
      init->tag != ProtoTag::kPadded) {
    std::abort();
  }
  auto streams = make_client_streams(*init);
  if (!streams) return 0;
  std::vector<std::byte> rest(bytes + kInitSize, bytes + size);
  streams->decrypt.apply(rest);
  streams->encrypt.apply(rest);
  return 0;
}
