// OpenClients: the worker's tally of its open client connections by source
// address, and when the latest one ended, for the clients section of its
// report (docs/worker-control.md, "report"). The supervisor lists a user's
// client IPs and last seen time from it. Addresses never reach a log here.
// Not thread-safe (the worker's one io_context thread).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <utility>

#include "ipc/control_protocol.h"

namespace mtw::worker {

class OpenClients {
 public:
  // A connection from `peer` opened. A peer of unknown family (0: a WEB
  // front stream, or no handoff) is not tallied; its close still counts.
  void opened(const ipc::control::PeerAddress& peer);
  // A connection ended at `now_unix` (wall clock, Unix seconds): `peer` as
  // given to opened(). A close without a matching open only sets the time.
  void closed(const ipc::control::PeerAddress& peer, std::int64_t now_unix);

  // The report's section: at most `cap` addresses, in (family, address)
  // order, `truncated` when more were open.
  ipc::control::ClientsReport report(std::size_t cap) const;
  std::size_t distinct() const noexcept { return open_.size(); }

 private:
  using Key = std::pair<std::uint8_t, std::array<std::byte, 16>>;
  static std::optional<Key> key_of(const ipc::control::PeerAddress& p);
  std::map<Key, std::uint32_t> open_;
  std::int64_t last_close_unix_ = 0;
};

}  // namespace mtw::worker
