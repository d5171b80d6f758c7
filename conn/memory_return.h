// MemoryReturn: gives the memory a burst of connections took back to the
// kernel once the burst is over. glibc keeps freed heap memory for reuse
// and returns by itself only a free region at the top of the heap, so the
// ~7 KiB of each of 10,000 closed connections, interleaved with whatever
// still lives, would hold the process's RSS at its peak for good. The
// owner's tick calls on_tick() with its live connection count; it shrinks
// the buffer pool (BufferPool::shrink, all idle buffers with no connection
// left) and, after the count fell (to zero, or by a quarter and at least
// kMinDrop since the last return) or the pool freed a MiB or more, calls
// malloc_trim(0), which releases every whole free page inside the heap,
// not only its top. A steady load (connections come and go, the count
// stays) never trims, so its freed memory stays there for reuse.
// Asio's epoll reactor keeps a record per socket it ever had open at once
// (release_reactor_states below); a return frees those of closed sockets
// too, over two ticks (mark, then free what stayed unused), and asks for the
// second tick with follow_up_pending().
// Not thread-safe (the owner's io_context thread).
#pragma once

#include <cstddef>
#include <cstdint>

#include "conn/buffer_pool.h"
#include "conn/names.h"

namespace mtw::conn {

class MemoryReturn {
 public:
  // A fall by less than this many connections (and not to zero) is churn.
  static constexpr std::size_t kMinDrop = 64;

  // Decides only (no side effects on the process): whether a return is due
  // at `connections` live connections, after `pool_freed_bytes` of buffers
  // went back to the allocator this tick. Updates the peak it compares with.
  [[nodiscard]] bool due(std::size_t connections, std::size_t pool_freed_bytes) noexcept;
  // The tick: shrinks `pool`, releases `io`'s unused reactor records and
  // trims the heap when due() (and on the tick after). Returns whether it
  // trimmed.
  bool on_tick(std::size_t connections, BufferPool& pool, asio::io_context& io) noexcept;
  // A return started and needs one more tick (the owner's idle tick must
  // not sleep before it).
  bool follow_up_pending() const noexcept { return follow_up_; }

  std::uint64_t trims() const noexcept { return trims_; }

 private:
  std::size_t peak_ = 0;  // the most connections since the last return
  bool follow_up_ = false;
  std::uint64_t trims_ = 0;
};

// Whether this build can release the reactor's records (Boost 1.81, epoll).
extern const bool kReactorStatesReleasable;

// Frees the records (168 bytes each) Asio's epoll reactor keeps for closed
// sockets, which it never frees itself (each pins a page of the heap
// among freed connections). A record may still sit in the scheduler's
// queue during the reactor cycle that closed its socket, so one call marks
// the records on the free list and frees those still marked from the
// previous call: only records unused for at least a whole cycle (the
// caller's ticks are separate handlers, a reactor run apart). Returns how
// many it freed; 0 where !kReactorStatesReleasable. Call only on the
// thread that runs `io`.
std::size_t release_reactor_states(asio::io_context& io) noexcept;

}  // namespace mtw::conn
