// identify() cost per connection among N users (issue 3 goal: <= 20 us per
// ClientHello at 1000 users when the SNI index hits).
//   TlsHit: every user has its own domain; the hello's SNI finds 1 candidate.
//   TlsSharedDomain: all users share one domain; the hello is the last one's.
//   TlsMiss: unknown key and unknown SNI; the try-all path runs N HMACs.
//   Obfs2: N simple secrets; the init is the last user's (N tag checks:
//     one SHA-256 block + one AES block each, then one full parse).
//   Obfs2Miss: random bytes (a probe) against N simple secrets: N tag checks.
#include <benchmark/benchmark.h>

#include "proto/identify.h"

namespace mtw::proto {
namespace {

constexpr std::int64_t kNow = 1'700'000'000;
constexpr std::size_t kPool = 512;

Secret make_secret(SeededRandom& rnd, SecretKind kind, std::string domain) {
  Secret s;
  rnd.fill(s.key);
  s.kind = kind;
  s.domain = std::move(domain);
  return s;
}

std::vector<UserSecret> users(std::size_t n, SecretKind kind, bool shared_domain) {
  SeededRandom rnd(1);
  std::vector<UserSecret> out;
  for (std::size_t i = 0; i < n; ++i) {
    std::string domain;
    if (kind == SecretKind::kFakeTls) {
      domain = shared_domain ? "cdn.example.com"
                             : std::string("u").append(std::to_string(i)).append(".example.com");
    }
    out.push_back({static_cast<UserId>(i), make_secret(rnd, kind, domain)});
  }
  return out;
}

// The clock advances one second per hello and the replay window is 0 s, so
// the pool can be reused without tripping the replay check.
void run(benchmark::State& state, const UserIndex& index, const std::vector<Bytes>& inputs,
         Rejection expect) {
  ReplayCache replay({.max_entries = 1 << 16, .window_seconds = 0, .hash_key = {1, 2}});
  IdentifyOptions opts;
  opts.clock = {.now = kNow, .max_skew_seconds = 1'000'000'000, .accept_below = 0};
  std::size_t i = 0;
  for (auto _ : state) {
    opts.clock.now = kNow + static_cast<std::int64_t>(i);
    const Identification id = identify(inputs[i % inputs.size()], index, replay, opts);
    if (id.rejection != expect) {
      state.SkipWithError(std::string(rejection_name(id.rejection)).c_str());
      break;
    }
    benchmark::DoNotOptimize(id.user);
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_IdentifyTlsHit(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const UserIndex index(users(n, SecretKind::kFakeTls, false));
  SeededRandom rnd(2);
  std::vector<Bytes> hellos;
  for (std::size_t k = 0; k < kPool; ++k) {
    hellos.push_back(build_client_hello(index.secrets()[k % n].secret, kNow, rnd));
  }
  run(state, index, hellos, Rejection::kNone);
}

void BM_IdentifyTlsSharedDomain(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const UserIndex index(users(n, SecretKind::kFakeTls, true));
  SeededRandom rnd(3);
  std::vector<Bytes> hellos;
  for (std::size_t k = 0; k < kPool; ++k) {
    hellos.push_back(build_client_hello(index.secrets().back().secret, kNow, rnd));
  }
  run(state, index, hellos, Rejection::kNone);
}

void BM_IdentifyTlsMiss(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const UserIndex index(users(n, SecretKind::kFakeTls, false));
  SeededRandom rnd(4);
  const Secret stranger = make_secret(rnd, SecretKind::kFakeTls, "stranger.example.org");
  std::vector<Bytes> hellos;
  for (std::size_t k = 0; k < kPool; ++k) hellos.push_back(build_client_hello(stranger, kNow, rnd));
  run(state, index, hellos, Rejection::kBadHmac);
}

void BM_IdentifyObfs2(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const UserIndex index(users(n, SecretKind::kSimple, false));
  SeededRandom rnd(5);
  std::vector<Bytes> inits;
  for (std::size_t k = 0; k < kPool; ++k) {
    const auto c = build_client_init(index.secrets().back().secret.key, ProtoTag::kPadded, 2, rnd);
    inits.emplace_back(c.wire.begin(), c.wire.end());
  }
  run(state, index, inits, Rejection::kNone);
}

void BM_IdentifyObfs2Miss(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const UserIndex index(users(n, SecretKind::kSimple, false));
  SeededRandom rnd(6);
  std::vector<Bytes> probes;
  for (std::size_t k = 0; k < kPool; ++k) {
    Bytes b(kInitSize);
    rnd.fill(b);
    b[0] = std::byte{0x01};  // not a TLS record, HTTP verb or plain transport
    probes.push_back(std::move(b));
  }
  run(state, index, probes, Rejection::kUnknownTag);
}

BENCHMARK(BM_IdentifyTlsHit)->Arg(1)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_IdentifyTlsSharedDomain)->Arg(1)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_IdentifyTlsMiss)->Arg(1)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_IdentifyObfs2)->Arg(1)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_IdentifyObfs2Miss)->Arg(1)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace mtw::proto

BENCHMARK_MAIN();
