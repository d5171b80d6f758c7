#include "conn/buffer_pool.h"

#include <algorithm>
#include <utility>

namespace mtw::conn {

BufferLease::BufferLease(BufferLease&& o) noexcept
    : pool_(std::exchange(o.pool_, nullptr)), data_(std::move(o.data_)) {}

BufferLease& BufferLease::operator=(BufferLease&& o) noexcept {
  if (this != &o) {
    reset();
    pool_ = std::exchange(o.pool_, nullptr);
    data_ = std::move(o.data_);
  }
  return *this;
}

void BufferLease::reset() noexcept {
  if (data_ && pool_) pool_->give_back(std::move(data_));
  data_.reset();
  pool_ = nullptr;
}

BufferLease BufferPool::borrow() {
  std::unique_ptr<std::byte[]> data;
  if (!free_.empty()) {
    data = std::move(free_.back());
    free_.pop_back();
  } else {
    data = std::make_unique_for_overwrite<std::byte[]>(kBufferSize);
  }
  ++in_use_;
  peak_in_use_ = std::max(peak_in_use_, in_use_);
  return BufferLease(this, std::move(data));
}

std::size_t BufferPool::shrink() noexcept {
  const std::size_t keep = std::min(free_.size(), peak_in_use_ - in_use_);
  const std::size_t freed = free_.size() - keep;
  free_.resize(keep);  // destroys the rest; capacity stays reserved (no allocation later)
  peak_in_use_ = in_use_;
  return freed;
}

std::size_t BufferPool::release_idle() noexcept {
  const std::size_t freed = free_.size();
  free_.clear();
  peak_in_use_ = in_use_;
  return freed;
}

void BufferPool::give_back(std::unique_ptr<std::byte[]> data) noexcept {
  --in_use_;
  // push_back cannot allocate: the constructor reserved max_idle_ slots.
  if (free_.size() < max_idle_) free_.push_back(std::move(data));
}

}  // namespace mtw::conn
