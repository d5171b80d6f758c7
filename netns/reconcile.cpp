#include "netns/reconcile.h"

#include "base/log.h"

namespace mtw::netns {

base::Result<ReconcileReport> reconcile(const CellHostConfig& cfg) {
  auto log = base::logger("netns");
  ReconcileReport rep;
  std::optional<base::Error> first_error;
  auto note = [&](base::Error e) {
    if (!first_error) first_error = std::move(e);
  };

  auto sk = NlSocket::connect();
  if (!sk) return tl::unexpected(sk.error());
  auto links = list_links(*sk);
  if (!links) return tl::unexpected(links.error());
  for (const auto& l : *links) {
    if (l.kind != "veth" || !is_cell_name(cfg.prefix, l.name)) continue;
    // Deleting the host end takes the cell end (inside its namespace) along.
    if (auto r = link_delete(*sk, l.name); !r) {
      note(r.error());
      continue;
    }
    rep.removed_links.push_back(l.name);
  }

  auto entries = list_netns(cfg.run_dir);
  if (!entries) return tl::unexpected(entries.error());
  for (const auto& n : *entries) {
    if (!is_cell_name(cfg.prefix, n)) continue;
    if (auto r = remove_netns(cfg.run_dir, n); !r) {
      note(r.error());
      continue;
    }
    rep.removed_netns.push_back(n);
  }

  if (cfg.manage_nft) {
    auto exists = nft_table_exists(cfg.nft_family, cfg.nft_table);
    if (!exists) {
      note(exists.error());
    } else if (*exists) {
      if (auto r = nft_delete_table(cfg.nft_family, cfg.nft_table); !r) {
        note(r.error());
      } else {
        rep.removed_nft_table = true;
      }
    }
  }
  if (!rep.removed_links.empty() || !rep.removed_netns.empty() || rep.removed_nft_table) {
    log->info("reconcile removed leftovers links={} netns={} nft_table={}",
              rep.removed_links.size(), rep.removed_netns.size(), rep.removed_nft_table);
  }
  if (first_error) return tl::unexpected(*first_error);
  return rep;
}

}  // namespace mtw::netns
