// Fuzzes identify() against a fixed small UserIndex: mtg's fake-TLS secret
// (so its hellos reach the accepted path), a simple secret with the same key
// (mtg's obfuscated2 snapshot decodes with it), a dd secret and another TLS
// secret. Input: one options byte, then the connection's first bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "proto/identify.h"

namespace {

using namespace mtw::proto;

constexpr std::int64_t kMtgTime = 1617181365;

const UserIndex& users() {
  static const UserIndex index = [] {
    const SecretKey mtg = {std::byte{0x36}, std::byte{0x7a}, std::byte{0x18}, std::byte{0x9a},
                           std::byte{0xee}, std::byte{0x18}, std::byte{0xfa}, std::byte{0x31},
                           std::byte{0xc1}, std::byte{0x90}, std::byte{0x05}, std::byte{0x4e},
                           std::byte{0xfd}, std::byte{0x4a}, std::byte{0x8e}, std::byte{0x95}};
    SecretKey other = mtg;
    other[0] = std::byte{0x00};
    SecretKey third = mtg;
    third[1] = std::byte{0x00};
    std::vector<UserSecret> s;
    s.push_back({1, Secret{mtg, SecretKind::kFakeTls, "storage.googleapis.com"}});
    s.push_back({2, Secret{mtg, SecretKind::kSimple, ""}});
    s.push_back({3, Secret{other, SecretKind::kSecure, ""}});
    s.push_back({4, Secret{third, SecretKind::kFakeTls, "example.com"}});
    return UserIndex(std::move(s));
  }();
  return index;
}

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t flags = data[0];
  const ByteSpan in(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  IdentifyOptions opts;
  opts.clock = {
      .now = kMtgTime + (flags & 0x20 ? 1000 : 0), .max_skew_seconds = 600, .accept_below = 0};
  opts.allowed = {.abridged = (flags & 1) == 0,
                  .intermediate = (flags & 2) == 0,
                  .padded = (flags & 4) == 0,
                  .fake_tls = (flags & 8) == 0};
  opts.try_all_on_sni_miss = (flags & 0x10) == 0;
  ReplayCache replay({.max_entries = 16, .window_seconds = 3600, .hash_key = {1, 2}});

  const Identification id = identify(in, users(), replay, opts);
  switch (id.rejection) {
    case Rejection::kNone: {
      require(id.secret_index < users().secrets().size());
      require(id.user == users().secrets()[id.secret_index].user);
      require(id.consumed <= in.size() && id.consumed > 0);
      require(id.fake_tls == id.hello.has_value() && id.fake_tls != id.init.has_value());
      require(replay.size() == 1);
      // The same bytes again are a replay.
      require(identify(in, users(), replay, opts).rejection == Rejection::kReplay);
      break;
    }
    case Rejection::kNeedMore:
      require(id.needed == 0 || id.needed > in.size());
      require(replay.size() == 0);
      break;
    default:
      require(replay.size() == 0);
      break;
  }
  return 0;
}
