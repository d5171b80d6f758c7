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
#include <span>
#include <vector>

#include "proto/bytes.h"

namespace mtw::proto {

// One remembered handshake: its keyed fingerprint and insert time (unix
// seconds). What the persisted form (below) stores.
struct ReplayEntry {
  std::uint64_t fingerprint = 0;
  std::uint32_t time = 0;
  friend bool operator==(const ReplayEntry&, const ReplayEntry&) = default;
};

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
  std::int64_t window_seconds() const noexcept;
  // The SipHash key: fingerprints are only comparable under the same key,
  // so a persisted cache keeps it (ReplayCacheOptions::hash_key restores it).
  std::array<std::uint64_t, 2> hash_key() const noexcept;

  // Persistence. With the journal on, every insert is also appended to it
  // (at most `max` entries between two take_journal calls; beyond that the
  // oldest give way: dropped from the journal, not from the cache, and
  // counted).
  void enable_journal(std::size_t max);
  // The entries inserted since the last call, oldest first.
  std::vector<ReplayEntry> take_journal();
  std::uint64_t journal_dropped() const noexcept;
  // Puts back an entry read from storage (call in insert order, oldest
  // first): ignored when expired at `now` or already present; when full,
  // the oldest entry makes room. Not journaled.
  void restore(const ReplayEntry& e, std::int64_t now);
  // Bytes this cache allocated (fixed at construction).
  std::size_t memory_bytes() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The persisted form (the gate's replay file, docs/gate.md "Replay cache"):
// a 64-byte header, then `capacity` slots of 12 bytes (fingerprint u64 LE,
// time u32 LE; all zero = empty), the n-th insert ever made going to slot
// n % capacity, so the file never grows and the newest `capacity` inserts
// are always in it. Header: "MTWRPLY1", the hash key (2 x u64 LE), capacity
// (u32 LE), 4 zero bytes, `next` (u64 LE: inserts made so far), then zeros.
inline constexpr std::size_t kReplayFileHeaderBytes = 64;
inline constexpr std::size_t kReplayFileSlotBytes = 12;
struct ReplayFileHeader {
  std::array<std::uint64_t, 2> hash_key{};
  std::uint32_t capacity = 0;
  std::uint64_t next = 0;
  friend bool operator==(const ReplayFileHeader&, const ReplayFileHeader&) = default;
};
[[nodiscard]] Bytes encode_replay_header(const ReplayFileHeader& h);
// Errors: kShortInput (under 64 bytes), kBadInput (magic, capacity 0 or
// over 2^30, a zero key, non-zero reserved bytes).
[[nodiscard]] Result<ReplayFileHeader> decode_replay_header(ByteSpan in);
void encode_replay_slot(const ReplayEntry& e, std::span<std::byte, kReplayFileSlotBytes> out);
ReplayEntry decode_replay_slot(std::span<const std::byte, kReplayFileSlotBytes> in);
inline constexpr std::uint64_t replay_file_bytes(std::uint32_t capacity) {
  return kReplayFileHeaderBytes + std::uint64_t{capacity} * kReplayFileSlotBytes;
}
// The slots of a whole file body (header excluded) in insert order, oldest
// first, empty ones left out: slot next % capacity is the oldest.
[[nodiscard]] std::vector<ReplayEntry> replay_slots_in_order(ByteSpan body,
                                                             const ReplayFileHeader& h);

}  // namespace mtw::proto
