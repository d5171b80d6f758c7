// ReplayStore: the gate's replay cache kept in a file across restarts of
// the gate and of the supervisor (docs/gate.md, "Replay cache"). The
// supervisor opens state_dir/replay.cache and passes it as an inherited fd
// (--replay-fd): the gate's sandbox has no path to write to. The file has
// the fixed size proto::replay_file_bytes(capacity) (proto/replay.h): a
// ring of the newest inserts, so it never grows.
//
// load() at start: a valid file of the same capacity gives the cache its
// hash key and every unexpired entry; anything else (new, other capacity,
// damaged) is started afresh with the cache's own key. flush() from the
// gate's tick (each second) and at exit writes the inserts since the last
// flush (the cache's journal) into their slots, then the header. The page
// cache carries them across a process restart; a host crash may lose the
// last few seconds (no fsync per flush; one at exit).
// Not thread-safe (the gate's one thread); borrows the fd.
#pragma once

#include <cstdint>
#include <string>

#include "base/error.h"
#include "proto/replay.h"

namespace mtw::gate {

class ReplayStore {
 public:
  // `fd`: read-write, owned by the caller for the store's life.
  explicit ReplayStore(int fd) : fd_(fd) {}

  struct Loaded {
    std::size_t restored = 0;  // unexpired entries put back
    bool fresh = false;        // the file was (re)initialised
    std::string why_fresh;     // "" when loaded; else the reason
  };
  // Replaces `cache` with one of the same capacity and window under the
  // file's key and its unexpired entries (or initialises the file for
  // `cache` as it is); turns the journal on. Errors: kSyscall (pread,
  // pwrite, ftruncate).
  [[nodiscard]] base::Result<Loaded> load(proto::ReplayCache& cache, std::int64_t now);
  // Writes the journal's entries; returns how many. Errors: kSyscall.
  [[nodiscard]] base::Result<std::size_t> flush(proto::ReplayCache& cache, bool sync = false);

 private:
  [[nodiscard]] base::Result<void> write_header();
  int fd_;
  proto::ReplayFileHeader header_;
};

}  // namespace mtw::gate
