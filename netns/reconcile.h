// Start-up reconciliation: removes what a crashed (or killed) run left
// behind, recognised strictly by shape: host links of kind veth named
// "<prefix><[0-9a-z]+>", namespace mounts of that name under the run dir,
// and the nft table mtwarden owns. Nothing else is touched, even under the
// same run dir or with a similar name. Workers die with the supervisor
// (parent-death signal), so a stale cell has nobody to adopt it: the policy
// is to remove, and let the supervisor recreate cells on demand.
// Thread-safety: call once, before CellHost::open, from one thread.
#pragma once

#include <string>
#include <vector>

#include "base/error.h"
#include "netns/cell.h"

namespace mtw::netns {

struct ReconcileReport {
  std::vector<std::string> removed_links;
  std::vector<std::string> removed_netns;
  bool removed_nft_table = false;
};

// Removes every leftover; an error names the first object that could not be
// removed (the rest are still attempted).
[[nodiscard]] base::Result<ReconcileReport> reconcile(const CellHostConfig& cfg);

}  // namespace mtw::netns
