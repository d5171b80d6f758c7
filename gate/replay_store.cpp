#include "gate/replay_store.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace mtw::gate {
namespace {

base::Result<void> pread_all(int fd, std::byte* out, std::size_t n, std::uint64_t off,
                             std::size_t& got) {
  got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd, out + got, n - got, static_cast<off_t>(off + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return base::fail_errno("replay file pread");
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  return {};
}

base::Result<void> pwrite_all(int fd, const std::byte* in, std::size_t n, std::uint64_t off) {
  for (std::size_t done = 0; done < n;) {
    const ssize_t r = ::pwrite(fd, in + done, n - done, static_cast<off_t>(off + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return base::fail_errno("replay file pwrite");
    done += static_cast<std::size_t>(r);
  }
  return {};
}

}  // namespace

base::Result<ReplayStore::Loaded> ReplayStore::load(proto::ReplayCache& cache, std::int64_t now) {
  Loaded out;
  const auto cap = static_cast<std::uint32_t>(cache.capacity());
  proto::Bytes head(proto::kReplayFileHeaderBytes);
  std::size_t got = 0;
  if (auto r = pread_all(fd_, head.data(), head.size(), 0, got); !r)
    return tl::unexpected(r.error());
  auto h = proto::decode_replay_header({head.data(), got});
  if (!h) {
    out.why_fresh = got == 0 ? "new file" : h.error().context;
  } else if (h->capacity != cap) {
    out.why_fresh = "capacity " + std::to_string(h->capacity) + " != " + std::to_string(cap);
  } else {
    proto::Bytes body(static_cast<std::size_t>(cap) * proto::kReplayFileSlotBytes);
    if (auto r = pread_all(fd_, body.data(), body.size(), proto::kReplayFileHeaderBytes, got); !r)
      return tl::unexpected(r.error());
    body.resize(got);
    proto::ReplayCache restored(
        proto::ReplayCacheOptions{cache.capacity(), cache.window_seconds(), h->hash_key});
    for (const proto::ReplayEntry& e : proto::replay_slots_in_order(body, *h)) {
      restored.restore(e, now);
    }
    out.restored = restored.size();
    cache = std::move(restored);
    header_ = *h;
  }
  if (!out.why_fresh.empty()) {
    out.fresh = true;
    header_ = {cache.hash_key(), cap, 0};
    if (::ftruncate(fd_, 0) != 0 ||
        ::ftruncate(fd_, static_cast<off_t>(proto::replay_file_bytes(cap))) != 0)
      return base::fail_errno("replay file ftruncate");
    if (auto r = write_header(); !r) return tl::unexpected(r.error());
  }
  // Twice the entries a second of the busiest handshake rate we plan for
  // can make between flushes, and never more than the cache holds.
  cache.enable_journal(std::min<std::size_t>(cache.capacity(), 1 << 18));
  return out;
}

base::Result<std::size_t> ReplayStore::flush(proto::ReplayCache& cache, bool sync) {
  const std::vector<proto::ReplayEntry> j = cache.take_journal();
  if (j.empty() && !sync) return 0;
  const std::uint64_t cap = header_.capacity;
  // Runs of consecutive slots go out in one pwrite each (at most two per
  // flush unless the journal wraps the ring).
  std::vector<std::byte> run;
  std::uint64_t run_slot = header_.next % cap;
  auto write_run = [&]() -> base::Result<void> {
    if (run.empty()) return {};
    auto r = pwrite_all(fd_, run.data(), run.size(),
                        proto::kReplayFileHeaderBytes + run_slot * proto::kReplayFileSlotBytes);
    run.clear();
    return r;
  };
  for (const proto::ReplayEntry& e : j) {
    const std::uint64_t slot = header_.next % cap;
    if (slot == 0 && !run.empty()) {
      if (auto r = write_run(); !r) return tl::unexpected(r.error());
    }
    if (run.empty()) run_slot = slot;
    const std::size_t at = run.size();
    run.resize(at + proto::kReplayFileSlotBytes);
    proto::encode_replay_slot(e, std::span<std::byte, proto::kReplayFileSlotBytes>(
                                     run.data() + at, proto::kReplayFileSlotBytes));
    ++header_.next;
  }
  if (auto r = write_run(); !r) return tl::unexpected(r.error());
  if (auto r = write_header(); !r) return tl::unexpected(r.error());
  if (sync && ::fdatasync(fd_) != 0) return base::fail_errno("replay file fdatasync");
  return j.size();
}

base::Result<void> ReplayStore::write_header() {
  const proto::Bytes h = proto::encode_replay_header(header_);
  return pwrite_all(fd_, h.data(), h.size(), 0);
}

}  // namespace mtw::gate
