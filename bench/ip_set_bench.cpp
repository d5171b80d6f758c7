// Admission tables (base/ip_set.h): the cost of one lookup in a set of
// 0, 10 and 100k prefixes (IPv4 and IPv6; what the gate pays per new
// connection and table), and of building a 100k-entry set from its
// entries (what an API edit or a reloaded blocklist pays). The empty-set
// lookup is the baseline the others are read against.
#include <benchmark/benchmark.h>

#include <random>

#include "base/ip_set.h"

namespace mtw::base {
namespace {

IpAddr random_addr(std::mt19937_64& rng, bool v6) {
  IpAddr a;
  a.v6 = v6;
  const std::uint64_t hi = rng(), lo = rng();
  for (int i = 0; i < 8; ++i) {
    a.bytes[i] = static_cast<std::uint8_t>(hi >> (8 * i));
    a.bytes[8 + i] = static_cast<std::uint8_t>(lo >> (8 * i));
  }
  if (!v6) std::fill(a.bytes.begin() + 4, a.bytes.end(), 0);
  return a;
}

// Like a FireHOL list: /20../32 networks (IPv4), /32../128 (IPv6).
std::vector<IpPrefix> random_entries(std::size_t n, bool v6) {
  std::mt19937_64 rng(42);
  std::vector<IpPrefix> v;
  v.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned len = v6 ? 32 + rng() % 97 : 20 + rng() % 13;
    v.push_back(prefix_of(random_addr(rng, v6), static_cast<std::uint8_t>(len)));
  }
  return v;
}

void BM_IpSetLookup(benchmark::State& state) {
  const bool v6 = state.range(1) != 0;
  const IpSet set(random_entries(static_cast<std::size_t>(state.range(0)), v6));
  std::mt19937_64 rng(7);
  std::vector<IpAddr> probes;
  for (int i = 0; i < 4096; ++i) probes.push_back(random_addr(rng, v6));
  std::size_t i = 0, hits = 0;
  for (auto _ : state) {
    hits += set.contains(probes[i++ & 4095]);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["ranges"] = static_cast<double>(set.ranges());
  state.counters["hit_share"] = static_cast<double>(hits) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_IpSetLookup)->ArgsProduct({{0, 10, 100'000}, {0, 1}})->ArgNames({"entries", "v6"});

void BM_IpSetBuild100k(benchmark::State& state) {
  const auto entries = random_entries(100'000, state.range(0) != 0);
  for (auto _ : state) {
    IpSet set(entries);
    benchmark::DoNotOptimize(set.ranges());
  }
  state.SetItemsProcessed(state.iterations() * 100'000);
}
BENCHMARK(BM_IpSetBuild100k)->Arg(0)->Arg(1)->ArgName("v6")->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace mtw::base

BENCHMARK_MAIN();
