// AES-256-CTR throughput: proto::AesCtr vs a direct OpenSSL EVP_EncryptUpdate
// loop on the same buffer, so the wrapper's overhead shows as a ratio
// (goal >= 0.95x). Both encrypt in place, one buffer per iteration.
#include <benchmark/benchmark.h>
#include <openssl/evp.h>

#include "proto/aes_ctr.h"
#include "proto/random.h"

namespace {

using mtw::proto::AesCtr;
using mtw::proto::Bytes;
using mtw::proto::CipherParams;

CipherParams bench_params() {
  CipherParams p;
  mtw::proto::SeededRandom rnd(1);
  rnd.fill(p.key);
  rnd.fill(p.iv);
  return p;
}

void BM_ProtoAesCtr(benchmark::State& state) {
  Bytes buf(static_cast<std::size_t>(state.range(0)));
  auto ctr = AesCtr::create(bench_params());
  if (!ctr) {
    state.SkipWithError("AesCtr::create failed");
    return;
  }
  for (auto _ : state) {
    ctr->apply(buf);
    benchmark::DoNotOptimize(buf.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void BM_RawEvpAesCtr(benchmark::State& state) {
  Bytes buf(static_cast<std::size_t>(state.range(0)));
  const CipherParams p = bench_params();
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr ||
      EVP_EncryptInit_ex(ctx, EVP_aes_256_ctr(), nullptr,
                         reinterpret_cast<const unsigned char*>(p.key.data()),
                         reinterpret_cast<const unsigned char*>(p.iv.data())) != 1) {
    state.SkipWithError("EVP init failed");
    EVP_CIPHER_CTX_free(ctx);
    return;
  }
  auto* data = reinterpret_cast<unsigned char*>(buf.data());
  const int len = static_cast<int>(buf.size());
  for (auto _ : state) {
    int out = 0;
    if (EVP_EncryptUpdate(ctx, data, &out, data, len) != 1) state.SkipWithError("update failed");
    benchmark::DoNotOptimize(buf.data());
    benchmark::ClobberMemory();
  }
  EVP_CIPHER_CTX_free(ctx);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

// Interleaved registration so both variants see similar machine load.
BENCHMARK(BM_RawEvpAesCtr)->Arg(16 * 1024);
BENCHMARK(BM_ProtoAesCtr)->Arg(16 * 1024);
BENCHMARK(BM_RawEvpAesCtr)->Arg(64 * 1024);
BENCHMARK(BM_ProtoAesCtr)->Arg(64 * 1024);

}  // namespace

BENCHMARK_MAIN();
