// The one nftables table mtwarden owns (default `table inet mtwarden`):
//  - nat_out:   a cell with a source address of its own (snat4/snat6 maps,
//               netns/snat.h) leaves from it; the rest of the cell pools is
//               masqueraded towards anything that is not a cell;
//  - cell_fwd:  drop cell -> cell, and anything new from outside -> cell;
//  - cell_inp:  drop cell -> host (local services), except IPv6 neighbour
//               discovery, which the cell needs to reach its gateway;
//  - with restrict_egress, in cell_fwd: cell -> anything not in the egress
//               sets is dropped and counted per cell (netns/egress.h).
// The rules match the pools and the interface prefix, not single cells, so
// creating a cell changes no rule. Written through libnftables in one
// transaction ("add; delete; define"), which also replaces a table left by a
// crashed run. Other tables are never touched.
// Thread-safety: one NftTable per process; calls are serialised by the caller.
#pragma once

#include <string>

#include "base/error.h"

namespace mtw::netns {

struct NftConfig {
  std::string family = "inet";
  std::string table = "mtwarden";
  std::string if_prefix = "mtw";  // host-end veth names start with this
  std::string pool4;              // "10.200.0.0/16"
  std::string pool6;              // "fd6d:7477:6172::/48" or empty
  bool masquerade = true;         // NAT cell traffic leaving through non-cell links
  // Cells may start connections only to the egress sets' destinations
  // (empty at creation: set them with egress_commands()).
  bool restrict_egress = false;
};

// The ruleset text for `cfg` (pure; unit-tested). kBadInput when a name
// holds characters that are not [0-9a-z_-] (keeps the text injection-free).
[[nodiscard]] base::Result<std::string> nft_ruleset(const NftConfig& cfg);

// Runs `commands` through libnftables. kPermission when the kernel says
// EPERM (missing CAP_NET_ADMIN), kNft with nft's message otherwise.
[[nodiscard]] base::Result<void> nft_run(const std::string& commands);

// Runs `commands` (a list command) and returns nft's text output. Errors as
// nft_run.
[[nodiscard]] base::Result<std::string> nft_list(const std::string& commands);

// True when the table exists.
[[nodiscard]] base::Result<bool> nft_table_exists(const std::string& family,
                                                  const std::string& table);

// Deletes the table; absent is success.
[[nodiscard]] base::Result<void> nft_delete_table(const std::string& family,
                                                  const std::string& table);

// Owns the table: create() installs (or replaces) it, the destructor deletes
// it. Move-only.
class NftTable {
 public:
  NftTable() = default;
  NftTable(NftTable&& o) noexcept;
  NftTable& operator=(NftTable&& o) noexcept;
  NftTable(const NftTable&) = delete;
  ~NftTable();

  [[nodiscard]] static base::Result<NftTable> create(const NftConfig& cfg);
  [[nodiscard]] base::Result<void> remove();
  void release() noexcept { owned_ = false; }
  bool valid() const noexcept { return owned_; }

 private:
  NftConfig cfg_;
  bool owned_ = false;
};

}  // namespace mtw::netns
