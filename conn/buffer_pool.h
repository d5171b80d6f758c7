// BufferPool: fixed-size I/O buffers shared by all connections of a process.
// A connection borrows one when a socket becomes readable, keeps it while
// reads keep returning data, and gives it back when a read would block, so
// idle connections hold no buffer. Keeps at most `max_idle` free buffers; the rest go back to
// the allocator, and shrink() (the owner's tick) frees those a burst left behind.
// Not thread-safe (one io_context thread).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

namespace mtw::conn {

// One relay chunk: large, so a busy connection needs few syscalls per byte.
// Holds four whole TLS records of 16384 bytes toward the client, and the
// largest record a client may send (5 + 16640 bytes) with room to spare.
inline constexpr std::size_t kBufferSize = 64 * 1024;
// The part of a buffer the handshake may fill: a whole ClientHello (16 KiB
// cap) plus slack. More bytes without a decision means "not MTProxy".
inline constexpr std::size_t kHandshakeBytes = 17 * 1024;
static_assert(kHandshakeBytes <= kBufferSize);

class BufferPool;

// A borrowed buffer; returns itself to the pool on destruction. Move-only.
// The pool must outlive every lease.
class BufferLease {
 public:
  BufferLease() noexcept = default;
  BufferLease(BufferLease&& o) noexcept;
  BufferLease& operator=(BufferLease&& o) noexcept;
  BufferLease(const BufferLease&) = delete;
  ~BufferLease() { reset(); }

  explicit operator bool() const noexcept { return data_ != nullptr; }
  std::span<std::byte> span() const noexcept { return {data_.get(), kBufferSize}; }
  std::byte* data() const noexcept { return data_.get(); }
  void reset() noexcept;

 private:
  friend class BufferPool;
  BufferLease(BufferPool* pool, std::unique_ptr<std::byte[]> data) noexcept
      : pool_(pool), data_(std::move(data)) {}
  BufferPool* pool_ = nullptr;
  std::unique_ptr<std::byte[]> data_;
};

class BufferPool {
 public:
  explicit BufferPool(std::size_t max_idle = 256) : max_idle_(max_idle) { free_.reserve(max_idle); }
  BufferLease borrow();

  std::size_t idle() const noexcept { return free_.size(); }
  std::size_t in_use() const noexcept { return in_use_; }

  // Frees the idle buffers the period since the previous call did not
  // need: keeps (peak in use over the period) - (in use now), so a steady
  // load keeps its working set and a burst's buffers go back to the
  // allocator at the second call after it ended. Returns how many it freed.
  std::size_t shrink() noexcept;
  // Frees every idle buffer (no connection left). Returns how many.
  std::size_t release_idle() noexcept;

 private:
  friend class BufferLease;
  void give_back(std::unique_ptr<std::byte[]> data) noexcept;

  std::size_t max_idle_;
  std::size_t in_use_ = 0;
  std::size_t peak_in_use_ = 0;  // since the last shrink()
  std::vector<std::unique_ptr<std::byte[]>> free_;
};

}  // namespace mtw::conn
