// ReplayCache: remembers handshake digests (fake-TLS client random, or
// obfuscated2 init bytes 8..56) for a time window, so a captured handshake
// replayed by a prober is recognised. O(1) insert and lookup; a hard memory
// bound fixed at construction; when full, the oldest entries fall out first.
// Not thread-safe: one per gate/worker event loop.
#pragma once

#include <cstdint>
#include <memory>

#include "proto/bytes.h"

namespace mtw::proto {

struct ReplayCacheOptions {
  std::size_t max_entries = 1 << 20;  // 1 M entries <= 64 MiB by design
  std::int64_t window_seconds = 2 * 24 * 3600;  // as the official proxy
};

class ReplayCache {
 public:
  explicit ReplayCache(const ReplayCacheOptions& opts = {});
  ~ReplayCache();
  ReplayCache(ReplayCache&&) noexcept;
  ReplayCache& operator=(ReplayCache&&) noexcept;

  // True if `digest` was seen within the window (a replay); otherwise
  // remembers it at time `now` (unix seconds) and returns false.
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
