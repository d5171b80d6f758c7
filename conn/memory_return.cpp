#include "conn/memory_return.h"

#include <malloc.h>

#include <algorithm>
#include <boost/version.hpp>
#include <cstdint>
#include <type_traits>

#if BOOST_VERSION == 108100 && defined(BOOST_ASIO_HAS_EPOLL) && \
    !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
#define MTW_RELEASE_REACTOR_STATES 1
// Boost 1.81 has no way to shrink the reactor's object_pool, and its
// members are private: they are reached the one way C++ allows, an explicit
// instantiation (access is not checked in its arguments) defining a friend
// that returns the member pointer. Checked against Boost 1.81's
// epoll_reactor and object_pool only (the #if): other versions get none of it.
namespace mtw::conn::reactor_access {

namespace ad = boost::asio::detail;

template <class Tag, auto Member>
struct Steal {
  friend auto stolen(Tag) { return Member; }
};
struct PoolTag {
  friend auto stolen(PoolTag);
};
struct MutexTag {
  friend auto stolen(MutexTag);
};
struct FreeListTag {
  friend auto stolen(FreeListTag);
};
struct EventsTag {
  friend auto stolen(EventsTag);
};
template struct Steal<PoolTag, &ad::epoll_reactor::registered_descriptors_>;
template struct Steal<MutexTag, &ad::epoll_reactor::registered_descriptors_mutex_>;
template struct Steal<FreeListTag,
                      &ad::object_pool<ad::epoll_reactor::descriptor_state>::free_list_>;
template struct Steal<EventsTag, &ad::epoll_reactor::descriptor_state::registered_events_>;

}  // namespace mtw::conn::reactor_access
#endif

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

bool MemoryReturn::on_tick(std::size_t connections, BufferPool& pool,
                           asio::io_context& io) noexcept {
  const std::size_t freed = connections == 0 ? pool.release_idle() : pool.shrink();
  if (due(connections, freed * kBufferSize)) {
    follow_up_ = kReactorStatesReleasable;
    release_reactor_states(io);  // marks this return's records (frees older marked ones)
  } else if (follow_up_) {
    follow_up_ = false;
    if (release_reactor_states(io) == 0) return false;
  } else {
    return false;
  }
  // Walks the heap's free chunks and madvises their whole pages away:
  // about a millisecond after 10,000 connections, nothing with none.
  ::malloc_trim(0);
  ++trims_;
  return true;
}

#ifdef MTW_RELEASE_REACTOR_STATES
const bool kReactorStatesReleasable = true;

std::size_t release_reactor_states(asio::io_context& io) noexcept {
  using namespace reactor_access;
  // Never a value of registered_events_ in use: Asio sets EPOLLIN, EPOLLOUT,
  // EPOLLPRI, EPOLLERR, EPOLLHUP and EPOLLET only (or 0).
  constexpr std::uint32_t kMarked = 0xffffffffu;
  auto& reactor = asio::use_service<ad::epoll_reactor>(static_cast<asio::execution_context&>(io));
  auto& mutex = reactor.*stolen(MutexTag{});
  std::remove_reference_t<decltype(mutex)>::scoped_lock lock(mutex);
  auto& pool = reactor.*stolen(PoolTag{});
  const auto events = stolen(EventsTag{});
  // A record stays on the free list from its socket's close to its reuse,
  // and reuse (register_descriptor) overwrites registered_events_: a record
  // still marked has been free since the previous call.
  std::size_t freed = 0;
  auto* link = &(pool.*stolen(FreeListTag{}));
  while (auto* o = *link) {
    auto*& next = ad::object_pool_access::next(o);
    if (o->*events == kMarked) {
      *link = next;
      ad::object_pool_access::destroy(o);
      ++freed;
    } else {
      o->*events = kMarked;
      link = &next;
    }
  }
  return freed;
}
#else
const bool kReactorStatesReleasable = false;

std::size_t release_reactor_states(asio::io_context&) noexcept { return 0; }
#endif

}  // namespace mtw::conn
