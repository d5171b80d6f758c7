#include "proto/replay.h"

#include <algorithm>
#include <bit>
#include <deque>
#include <string>
#include <vector>

#include "base/check.h"
#include "proto/random.h"

namespace mtw::proto {

using base::fail;

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
  bool journal_on = false;
  std::size_t journal_max = 0;
  std::deque<ReplayEntry> journal;
  std::uint64_t journal_dropped = 0;

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
  if (m.journal_on && m.journal_max != 0) {
    if (m.journal.size() == m.journal_max) {  // the oldest give way
      m.journal.pop_front();
      ++m.journal_dropped;
    }
    m.journal.push_back({fp, Impl::stamp(now)});
  }
  return false;
}

std::int64_t ReplayCache::window_seconds() const noexcept { return impl_->window; }
std::array<std::uint64_t, 2> ReplayCache::hash_key() const noexcept { return impl_->key; }

void ReplayCache::enable_journal(std::size_t max) {
  impl_->journal_on = true;
  impl_->journal_max = max;
}

std::vector<ReplayEntry> ReplayCache::take_journal() {
  std::vector<ReplayEntry> out(impl_->journal.begin(), impl_->journal.end());
  impl_->journal.clear();
  return out;
}

std::uint64_t ReplayCache::journal_dropped() const noexcept { return impl_->journal_dropped; }

void ReplayCache::restore(const ReplayEntry& e, std::int64_t now) {
  Impl& m = *impl_;
  if (now - static_cast<std::int64_t>(e.time) > m.window) return;
  if (m.find(e.fingerprint, now)) return;
  if (m.count == m.cap) m.pop_oldest();
  m.insert(e.fingerprint, e.time);
}

namespace {
constexpr char kReplayMagic[8] = {'M', 'T', 'W', 'R', 'P', 'L', 'Y', '1'};

void store_le(std::byte* p, std::uint64_t v, int n) noexcept {
  for (int i = 0; i < n; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
std::uint64_t load_le(const std::byte* p, int n) noexcept {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint64_t>(p[i]);
  return v;
}
}  // namespace

Bytes encode_replay_header(const ReplayFileHeader& h) {
  Bytes out(kReplayFileHeaderBytes, std::byte{0});
  for (std::size_t i = 0; i < 8; ++i) out[i] = static_cast<std::byte>(kReplayMagic[i]);
  store_le(out.data() + 8, h.hash_key[0], 8);
  store_le(out.data() + 16, h.hash_key[1], 8);
  store_le(out.data() + 24, h.capacity, 4);
  store_le(out.data() + 32, h.next, 8);
  return out;
}

Result<ReplayFileHeader> decode_replay_header(ByteSpan in) {
  if (in.size() < kReplayFileHeaderBytes)
    return fail(Errc::kShortInput, "replay file: short header");
  auto bad = [](const char* why) {
    return fail(Errc::kBadInput, std::string("replay file: ") + why);
  };
  for (std::size_t i = 0; i < 8; ++i)
    if (in[i] != static_cast<std::byte>(kReplayMagic[i])) return bad("not a replay file");
  ReplayFileHeader h;
  h.hash_key = {load_le(in.data() + 8, 8), load_le(in.data() + 16, 8)};
  h.capacity = static_cast<std::uint32_t>(load_le(in.data() + 24, 4));
  h.next = load_le(in.data() + 32, 8);
  if (h.capacity == 0 || h.capacity > kMaxEntries) return bad("capacity out of range");
  if (h.hash_key[0] == 0 && h.hash_key[1] == 0) return bad("zero hash key");
  for (std::size_t i = 28; i < 32; ++i)
    if (in[i] != std::byte{0}) return bad("reserved bytes set");
  for (std::size_t i = 40; i < kReplayFileHeaderBytes; ++i)
    if (in[i] != std::byte{0}) return bad("reserved bytes set");
  return h;
}

void encode_replay_slot(const ReplayEntry& e, std::span<std::byte, kReplayFileSlotBytes> out) {
  store_le(out.data(), e.fingerprint, 8);
  store_le(out.data() + 8, e.time, 4);
}

ReplayEntry decode_replay_slot(std::span<const std::byte, kReplayFileSlotBytes> in) {
  return {load_le(in.data(), 8), static_cast<std::uint32_t>(load_le(in.data() + 8, 4))};
}

std::vector<ReplayEntry> replay_slots_in_order(ByteSpan body, const ReplayFileHeader& h) {
  std::vector<ReplayEntry> out;
  const std::size_t slots = std::min<std::size_t>(h.capacity, body.size() / kReplayFileSlotBytes);
  const std::size_t first = static_cast<std::size_t>(h.next % h.capacity);
  for (std::size_t k = 0; k < h.capacity; ++k) {
    const std::size_t i = (first + k) % h.capacity;
    if (i >= slots) continue;
    const ReplayEntry e = decode_replay_slot(std::span<const std::byte, kReplayFileSlotBytes>(
        body.data() + i * kReplayFileSlotBytes, kReplayFileSlotBytes));
    if (e.fingerprint == 0 && e.time == 0) continue;
    out.push_back(e);
  }
  return out;
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
