// Where each user's cell leaves the host (multi-address hosts): keeps the
// cells' SNAT maps (netns/snat.h) in step with the users' egress sources
// (supervisor/config.h egress_source, supervisor/cell_source.h). A cell
// whose user's upstreams (its assignment, `names`) include a direct
// upstream with `source` or `interface` gets an entry before its worker
// starts; the entry goes with the cell; refresh() follows one user's change
// (an API assignment that leaves the file's [egress] list, say) and a
// reload recomputes every cell's entry (an interface's addresses are looked
// up again then). SNAT is per cell, so the source applies to everything the
// cell sends off the host, whichever of the user's upstreams a connection
// takes (one source per user's list, which the loader enforces). conntrack
// keeps the translation of connections already made: a change reaches new
// connections only.
// Thread: the event loop only. Each change is one call of `apply` (the nft
// transaction, a few milliseconds, that rewrites both maps whole); nothing
// is applied when the maps would not change.
// Lifetime: made with the cells' host (open_cells) and destroyed before it
// (the maps live in the host's nft table). `cfg` is borrowed and outlives
// the link; it is read at each call, so a reload that replaces its content
// is seen by the next update().
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"
#include "netns/snat.h"
#include "supervisor/cell_source.h"
#include "supervisor/config.h"

namespace mtw::daemon {

class SourceLink {
 public:
  // Makes `entries` the whole content of the maps (CellHost::set_source_nat).
  using Apply = std::function<base::Result<void>(const std::vector<netns::SourceNat>&)>;
  // The upstream names that apply to a user now (supervisor::assigned_names).
  using Names = std::function<std::vector<std::string>(const std::string& user)>;

  SourceLink(const supervisor::Config& cfg, Apply apply, Names names,
             supervisor::InterfaceAddresses lookup = supervisor::interface_addresses)
      : cfg_(cfg), apply_(std::move(apply)), names_(std::move(names)), lookup_(std::move(lookup)) {}
  SourceLink(const SourceLink&) = delete;
  SourceLink& operator=(const SourceLink&) = delete;

  // User `user`'s cell, whose host end is `host_if`, is up and its worker
  // is about to start: the cell's entry follows the configuration now. On
  // error (the source cannot be resolved, or `apply` failed) the maps are
  // unchanged and the caller must not start the worker: it would leave from
  // the wrong address. The error says what is wrong with the source, e.g.
  // "interface eth1 has no IPv4 address". Either way the cell is followed
  // by later update() calls until cell_gone().
  [[nodiscard]] base::Result<void> cell_up(const std::string& user, const std::string& host_if);
  // The user's upstreams may have changed (an API assignment, a reload):
  // its cell's entry follows them. On error the previous entry stays
  // (logged as an error). Nothing for a cell cell_up() has not seen.
  void refresh(const std::string& user, const std::string& host_if);
  // The cell goes: its entry leaves the maps (a failure is logged; a stale
  // entry names an interface nobody has any more).
  void cell_gone(const std::string& host_if);
  // After a reload: every cell's entry follows the configuration. A cell
  // whose source cannot be resolved keeps its previous entry (logged as an
  // error): dropping it would send the cell out through masquerade.
  void update();

  // What the maps hold now: host end -> entry.
  const std::map<std::string, netns::SourceNat>& applied() const noexcept { return applied_; }

 private:
  // The entry for the cell (nullopt: masquerade), resolved now.
  base::Result<std::optional<netns::SourceNat>> wanted(const std::string& user,
                                                       const std::string& host_if) const;
  // Makes `next` the maps' content when it differs from what is applied.
  base::Result<void> commit(std::map<std::string, netns::SourceNat> next);

  const supervisor::Config& cfg_;
  Apply apply_;
  Names names_;
  supervisor::InterfaceAddresses lookup_;
  std::map<std::string, std::string> cells_;         // host_if -> user name
  std::map<std::string, netns::SourceNat> applied_;  // host_if -> entry, as in the kernel
};

}  // namespace mtw::daemon
