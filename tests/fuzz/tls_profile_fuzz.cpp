// Fuzzes parse_profile: whatever it accepts must format and parse back to
// the same profile, and the answer built from it must be one well-formed
// ServerHello ‖ CCS ‖ AppData that verify_server_hello accepts and that
// parse_server_flight reads back with the profile's fields.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "proto/tls_profile.h"

namespace {

using namespace mtw::proto;

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto p = parse_profile(text);
  if (!p) return 0;
  const std::string formatted = format_profile(*p);
  auto back = parse_profile(formatted);
  require(back.has_value() && *back == *p);
  require(format_profile(*back) == formatted);

  SeededRandom rnd(size);
  Secret s;
  rnd.fill(s.key);
  s.kind = SecretKind::kFakeTls;
  s.domain = "mask.test";
  auto hello = parse_client_hello(build_client_hello(s, 1'800'000'000, rnd));
  require(hello.has_value());
  const Bytes answer = build_server_hello(*hello, s.key, *p, rnd);
  auto used = verify_server_hello(answer, hello->random, s.key);
  require(used.has_value() && *used == answer.size());
  const RecordRange wire = flight_wire_range(*p);
  auto f = parse_server_flight(answer);
  // A profile may name extensions a TLS 1.3 ServerHello cannot carry (no
  // supported_versions 03 04): the answer is still built, just not readable
  // as TLS 1.3 by our own parser.
  if (!f) return 0;
  require(f->cipher_suite == p->cipher_suite && f->legacy_version == p->legacy_version);
  require(f->extensions.size() == p->extensions.size());
  require(f->key_share_group == p->key_share_group && f->key_share_len == p->key_share_len);
  require(f->encrypted_records.size() == 1);
  const std::size_t n = 5 + f->encrypted_records[0];
  require(n <= 5 + kMaxProfileRecord);
  require(n >= std::min<std::size_t>(std::max<std::size_t>(wire.min, 6), 5 + kMaxProfileRecord));
  require(n <= std::max<std::size_t>(std::min<std::size_t>(wire.max, 5 + kMaxProfileRecord), 6));
  return 0;
}
