// ReplayCache: remembers handshake digests (fake-TLS client random, or
// obfuscated2 init bytes 8..56) for a time window, so a captured handshake
// replayed by a prober is recognised. O(1) insert and lookup; a hard memory
// bound fixed at construction; when full, the oldest entries fall out first.
// Not thread-safe: one per gate/worker event loop.
//
// Layout: a FIFO ring of 64-bit fingerprints + u32 insert times, and an
// open-addressing index (linear probing, u32 slots, load <= 1/2) over it:
// 20 bytes per entry, so 1 M entries take 20 MiB. Fingerprints are
// SipHash-2-4 under a per-cache key, so a prober who chooses digests (the
// obfuscated2 init is attacker-controlled) can neither force collisions nor
// long probe chains; two distinct digests share a fingerprint with
// probability ~2^-64 per pair.
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "proto/bytes.h"

namespace mtw::proto {

struct ReplayCacheOptions {
  std::size_t max_entries = 1 << 20;            // 1 M entries: 20 MiB; 1 ..= 2^30
  std::int64_t window_seconds = 2 * 24 * 3600;  // as the official proxy
  // SipHash key. All zero (the default) draws a random key from
  // system_random() at construction; tests pass a fixed one.
  std::array<std::uint64_t, 2> hash_key{};
};

class ReplayCache {
 public:
  explicit ReplayCache(const ReplayCacheOptions& opts = {});
  ~ReplayCache();
  ReplayCache(ReplayCache&&) noexcept;
  ReplayCache& operator=(ReplayCache&&) noexcept;

  // True if `digest` was seen within the window (a replay); otherwise
  // remembers it at time `now` (unix seconds) and returns false. Entries
  // older than the window and, when full, the oldest entry are dropped first.
  // A clock that goes backwards never expires entries early.
  bool check_and_insert(ByteSpan digest, std::int64_t now);
  // Lookup only.
  bool contains(ByteSpan digest, std::int64_t now) const;

  std::size_t size() const noexcept;
  std::size_t capacity() const noexcept;
  // Bytes this cache allocated (fixed at construction).
  std::size_t memory_bytes() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mtw::proto
