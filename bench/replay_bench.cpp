// ReplayCache at 1 M entries: inserts/s of fresh digests into a full cache
// (each insert also evicts the oldest), lookups/s, and bytes per entry.
#include <benchmark/benchmark.h>

#include "proto/replay.h"

namespace mtw::proto {
namespace {

constexpr std::size_t kMillion = 1 << 20;

// A distinct 32-byte digest per counter value (like a TLS client random).
struct DigestGen {
  std::array<std::byte, 32> d{};
  std::uint64_t n = 0;
  ByteSpan next() {
    ++n;
    store_le32(d.data(), static_cast<std::uint32_t>(n));
    store_le32(d.data() + 4, static_cast<std::uint32_t>(n >> 32));
    return d;
  }
};

ReplayCache full_cache(DigestGen& gen) {
  ReplayCache c({.max_entries = kMillion, .window_seconds = 3600, .hash_key = {3, 4}});
  for (std::size_t i = 0; i < kMillion; ++i) (void)c.check_and_insert(gen.next(), 1000);
  return c;
}

void BM_ReplayInsertAt1M(benchmark::State& state) {
  DigestGen gen;
  ReplayCache c = full_cache(gen);
  for (auto _ : state) benchmark::DoNotOptimize(c.check_and_insert(gen.next(), 1000));
  state.SetItemsProcessed(state.iterations());
  state.counters["entries"] = static_cast<double>(c.size());
  state.counters["bytes_per_entry"] =
      static_cast<double>(c.memory_bytes()) / static_cast<double>(c.capacity());
  state.counters["MiB"] = static_cast<double>(c.memory_bytes()) / (1 << 20);
}

void BM_ReplayLookupHitAt1M(benchmark::State& state) {
  DigestGen gen;
  ReplayCache c = full_cache(gen);
  DigestGen again;
  for (auto _ : state) {
    if (again.n == kMillion) again.n = 0;
    benchmark::DoNotOptimize(c.contains(again.next(), 1000));
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_ReplayInsertAt1M);
BENCHMARK(BM_ReplayLookupHitAt1M);

}  // namespace
}  // namespace mtw::proto

BENCHMARK_MAIN();
