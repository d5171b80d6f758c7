#include "conn/memory_return.h"

#include <malloc.h>

#include <algorithm>

namespace mtw::conn {
namespace {

// Pool buffers freed in one tick worth a trim of their own: 16 x 64 KiB.
constexpr std::size_t kPoolTrimBytes = 1024 * 1024;

}  // namespace

bool MemoryReturn::due(std::size_t connections, std::size_t pool_freed_bytes) noexcept {
  peak_ = std::max(peak_, connections);
  const bool emptied = connections == 0 && peak_ != 0;
  const bool fell = peak_ - connections >= kMinDrop && connections * 4 <= peak_ * 3;
  if (!emptied && !fell && pool_freed_bytes < kPoolTrimBytes) return false;
  peak_ = connections;  // the next return needs a new fall
  return true;
}

bool MemoryReturn::on_tick(std::size_t connections, BufferPool& pool) noexcept {
  const std::size_t freed = connections == 0 ? pool.release_idle() : pool.shrink();
  if (!due(connections, freed * kBufferSize)) return false;
  // Walks the heap's free chunks and madvises their whole pages away:
  // about a millisecond after 10,000 connections, nothing with none.
  ::malloc_trim(0);
  ++trims_;
  return true;
}

}  // namespace mtw::conn
