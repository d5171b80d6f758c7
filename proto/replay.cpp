#include "proto/replay.h"

#include <algorithm>
#include <bit>
#include <vector>

#include "base/check.h"
#include "proto/random.h"

namespace mtw::proto {
namespace {

constexpr std::size_t kMaxEntries = std::size_t{1} << 30;  // u32 slot numbers + 1 must fit

std::uint64_t load_le64(const std::byte* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint64_t>(p[i]);
  return v;
}

// SipHash-2-4 (Aumasson & Bernstein), 64-bit output.
std::uint64_t siphash24(const std::array<std::uint64_t, 2>& k, ByteSpan in) noexcept {
  std::uint64_t v0 = 0x736f6d6570736575ULL ^ k[0];
  std::uint64_t v1 = 0x646f72616e646f6dULL ^ k[1];
  std::uint64_t v2 = 0x6c7967656e657261ULL ^ k[0];
  std::uint64_t v3 = 0x7465646279746573ULL ^ k[1];
  auto round = [&] {
    v0 += v1, v1 = std::rotl(v1, 13), v1 ^= v0, v0 = std::rotl(v0, 32);
    v2 += v3, v3 = std::rotl(v3, 16), v3 ^= v2;
    v0 += v3, v3 = std::rotl(v3, 21), v3 ^= v0;
    v2 += v1, v1 = std::rotl(v1, 17), v1 ^= v2, v2 = std::rotl(v2, 32);
  };
  auto absorb = [&](std::uint64_t m) {
    v3 ^= m;
    round(), round();
    v0 ^= m;
  };
  const std::size_t full = in.size() / 8 * 8;
  for (std::size_t i = 0; i < full; i += 8) absorb(load_le64(in.data() + i));
  std::uint64_t last = static_cast<std::uint64_t>(in.size()) << 56;
  for (std::size_t i = full; i < in.size(); ++i) {
    last |= std::to_integer<std::uint64_t>(in[i]) << (8 * (i - full));
  }
  absorb(last);
  v2 ^= 0xff;
  round(), round(), round(), round();
  return v0 ^ v1 ^ v2 ^ v3;
}

}  // namespace

struct ReplayCache::Impl {
  std::array<std::uint64_t, 2> key{};
  std::int64_t window = 0;
  std::size_t cap = 0;
  std::vector<std::uint64_t> fps;    // ring: fingerprints
  std::vector<std::uint32_t> times;  // ring: insert time (unix seconds, saturated)
  std::size_t head = 0;              // oldest entry
  std::size_t count = 0;
  std::vector<std::uint32_t> index;  // ring slot + 1; 0 = empty
  std::size_t mask = 0;

  // SipHash output: the low bits are uniform, no further mixing needed.
  std::size_t home(std::uint64_t fp) const noexcept { return fp & mask; }

  static std::uint32_t stamp(std::int64_t now) noexcept {
    return static_cast<std::uint32_t>(std::clamp<std::int64_t>(now, 0, UINT32_MAX));
  }
  bool expired(std::size_t slot, std::int64_t now) const noexcept {
    return now - static_cast<std::int64_t>(times[slot]) > window;
  }

  bool find(std::uint64_t fp, std::int64_t now) const noexcept {
    for (std::size_t i = home(fp);; i = (i + 1) & mask) {
      const std::uint32_t v = index[i];
      if (v == 0) return false;
      if (fps[v - 1] == fp && !expired(v - 1, now)) return true;
    }
  }

  // Backward-shift deletion keeps linear probing tombstone-free.
  void unindex(std::size_t slot) noexcept {
    std::size_t i = home(fps[slot]);
    while (index[i] != slot + 1) i = (i + 1) & mask;
    for (std::size_t j = (i + 1) & mask; index[j] != 0; j = (j + 1) & mask) {
      const std::size_t k = home(fps[index[j] - 1]);
      // Move j into the hole at i unless its home lies cyclically in (i, j].
      const bool stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
      if (!stays) {
        index[i] = index[j];
        i = j;
      }
    }
    index[i] = 0;
  }

  void pop_oldest() noexcept {
    unindex(head);
    head = (head + 1) % cap;
    --count;
  }

  void insert(std::uint64_t fp, std::int64_t now) noexcept {
    const std::size_t slot = (head + count) % cap;
    fps[slot] = fp;
    times[slot] = stamp(now);
    ++count;
    std::size_t i = home(fp);
    while (index[i] != 0) i = (i + 1) & mask;
    index[i] = static_cast<std::uint32_t>(slot + 1);
  }
};

ReplayCache::ReplayCache(const ReplayCacheOptions& opts) : impl_(std::make_unique<Impl>()) {
  MTW_CHECK(opts.max_entries >= 1 && opts.max_entries <= kMaxEntries);
  MTW_CHECK(opts.window_seconds >= 0);
  Impl& m = *impl_;
  m.key = opts.hash_key;
  if (m.key[0] == 0 && m.key[1] == 0) {
    std::array<std::byte, 16> k{};
    system_random().fill(k);
    m.key = {load_le64(k.data()), load_le64(k.data() + 8)};
  }
  m.window = opts.window_seconds;
  m.cap = opts.max_entries;
  m.fps.assign(m.cap, 0);
  m.times.assign(m.cap, 0);
  m.index.assign(std::bit_ceil(2 * m.cap), 0);
  m.mask = m.index.size() - 1;
}

ReplayCache::~ReplayCache() = default;
ReplayCache::ReplayCache(ReplayCache&&) noexcept = default;
ReplayCache& ReplayCache::operator=(ReplayCache&&) noexcept = default;

bool ReplayCache::check_and_insert(ByteSpan digest, std::int64_t now) {
  Impl& m = *impl_;
  while (m.count > 0 && m.expired(m.head, now)) m.pop_oldest();
  const std::uint64_t fp = siphash24(m.key, digest);
  if (m.find(fp, now)) return true;
  if (m.count == m.cap) m.pop_oldest();
  m.insert(fp, now);
  return false;
}

bool ReplayCache::contains(ByteSpan digest, std::int64_t now) const {
  return impl_->find(siphash24(impl_->key, digest), now);
}

std::size_t ReplayCache::size() const noexcept { return impl_->count; }
std::size_t ReplayCache::capacity() const noexcept { return impl_->cap; }

std::size_t ReplayCache::memory_bytes() const noexcept {
  const Impl& m = *impl_;
  return sizeof(Impl) + m.fps.capacity() * sizeof(std::uint64_t) +
         m.times.capacity() * sizeof(std::uint32_t) + m.index.capacity() * sizeof(std::uint32_t);
}

}  // namespace mtw::proto
