#include "netns/nft.h"

#include <algorithm>
#include <memory>
#include <utility>

#include <nftables/libnftables.h>

namespace mtw::netns {

using base::Errc;

namespace {

struct CtxFree {
  void operator()(nft_ctx* c) const noexcept { nft_ctx_free(c); }
};

bool safe_word(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '_' || c == '-';
  });
}

bool safe_cidr(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '.' || c == ':' || c == '/';
  });
}

// Runs `cmd`; returns nft's error text through `err_text`.
int run_capture(const std::string& cmd, std::string* out_text, std::string* err_text) {
  std::unique_ptr<nft_ctx, CtxFree> ctx(nft_ctx_new(NFT_CTX_DEFAULT));
  if (!ctx) {
    *err_text = "nft_ctx_new failed";
    return -1;
  }
  nft_ctx_buffer_output(ctx.get());
  nft_ctx_buffer_error(ctx.get());
  int rc = nft_run_cmd_from_buffer(ctx.get(), cmd.c_str());
  if (const char* o = nft_ctx_get_output_buffer(ctx.get()); o != nullptr && out_text != nullptr)
    *out_text = o;
  if (const char* e = nft_ctx_get_error_buffer(ctx.get()); e != nullptr) *err_text = e;
  return rc;
}

}  // namespace

base::Result<std::string> nft_ruleset(const NftConfig& cfg) {
  if (!safe_word(cfg.family) || !safe_word(cfg.table) || !safe_word(cfg.if_prefix) ||
      !safe_cidr(cfg.pool4) || !safe_cidr(cfg.pool6) || cfg.pool4.empty()) {
    return base::fail(Errc::kBadInput, "nft table/prefix/pool holds unexpected characters");
  }
  const std::string cells = "\"" + cfg.if_prefix + "*\"";
  const std::string t = cfg.family + " " + cfg.table;
  std::string s;
  // add+delete first: the transaction then replaces any stale copy atomically.
  s += "add table " + t + "\ndelete table " + t + "\n";
  s += "table " + t + " {\n";
  if (cfg.restrict_egress) {
    s += " set egress4 { type ipv4_addr . inet_proto . inet_service; }\n";
    s += " set egress6 { type ipv6_addr . inet_proto . inet_service; }\n";
    // One element per cell that dropped something, forgotten after an hour
    // without a drop (the reader takes a smaller count as a restart).
    s += " set egress_drops { type ifname; size 65536; flags dynamic,timeout; timeout 1h; "
         "counter; }\n";
  }
  // Per-cell source addresses (netns/snat.h): the cell's host end picks
  // the address; a cell without an element falls through to masquerade.
  s += " map snat4 { type ifname : ipv4_addr; }\n";
  s += " map snat6 { type ifname : ipv6_addr; }\n";
  s += " chain nat_out {\n  type nat hook postrouting priority srcnat; policy accept;\n";
  s += "  ip saddr " + cfg.pool4 + " oifname != " + cells + " snat ip to iifname map @snat4\n";
  if (!cfg.pool6.empty())
    s += "  ip6 saddr " + cfg.pool6 + " oifname != " + cells + " snat ip6 to iifname map @snat6\n";
  if (cfg.masquerade) {
    s += "  ip saddr " + cfg.pool4 + " oifname != " + cells + " masquerade\n";
    if (!cfg.pool6.empty())
      s += "  ip6 saddr " + cfg.pool6 + " oifname != " + cells + " masquerade\n";
  }
  s += " }\n";
  // Chain names avoid `fwd` and `in`: reserved words in nft syntax.
  s += " chain cell_fwd {\n  type filter hook forward priority filter; policy accept;\n";
  s += "  iifname " + cells + " oifname " + cells + " drop\n";
  s += "  oifname " + cells + " ct state established,related accept\n";
  s += "  oifname " + cells + " drop\n";
  if (cfg.restrict_egress) {
    // Established first: a set update never cuts a connection it allowed.
    s += "  iifname " + cells + " ct state established,related accept\n";
    s += "  iifname " + cells + " ip daddr . meta l4proto . th dport @egress4 accept\n";
    s += "  iifname " + cells + " ip6 daddr . meta l4proto . th dport @egress6 accept\n";
    // The counting element is made by the kernel on a cell's first drop.
    s += "  iifname " + cells + " update @egress_drops { iifname }\n";
    s += "  iifname " + cells + " drop\n";
  }
  s += " }\n";
  s += " chain cell_inp {\n  type filter hook input priority filter; policy accept;\n";
  s += "  iifname " + cells +
       " icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit } accept\n";
  s += "  iifname " + cells + " drop\n";
  s += " }\n}\n";
  return s;
}

base::Result<void> nft_run(const std::string& commands) {
  std::string err;
  if (run_capture(commands, nullptr, &err) == 0) return {};
  bool perm = err.find("Operation not permitted") != std::string::npos;
  if (perm)
    return tl::unexpected(base::Error{Errc::kPermission, EPERM, "nft (CAP_NET_ADMIN required)"});
  while (!err.empty() && err.back() == '\n') err.pop_back();
  return base::fail(Errc::kNft, "nft: " + err);
}

base::Result<std::string> nft_list(const std::string& commands) {
  std::string out, err;
  if (run_capture(commands, &out, &err) == 0) return out;
  if (err.find("Operation not permitted") != std::string::npos)
    return tl::unexpected(base::Error{Errc::kPermission, EPERM, "nft (CAP_NET_ADMIN required)"});
  while (!err.empty() && err.back() == '\n') err.pop_back();
  return base::fail(Errc::kNft, "nft: " + err);
}

base::Result<bool> nft_table_exists(const std::string& family, const std::string& table) {
  if (!safe_word(family) || !safe_word(table)) return base::fail(Errc::kBadInput, "nft table name");
  std::string out, err;
  if (run_capture("list tables " + family, &out, &err) != 0) {
    if (err.find("Operation not permitted") != std::string::npos) {
      return tl::unexpected(
          base::Error{Errc::kPermission, EPERM, "nft list (CAP_NET_ADMIN required)"});
    }
    return base::fail(Errc::kNft, "nft list tables: " + err);
  }
  return out.find("table " + family + " " + table + "\n") != std::string::npos;
}

base::Result<void> nft_delete_table(const std::string& family, const std::string& table) {
  if (!safe_word(family) || !safe_word(table)) return base::fail(Errc::kBadInput, "nft table name");
  // "destroy table" (ignore-missing) needs nft >= 1.0.8; add+delete is the
  // idempotent form that older nft accepts.
  const std::string t = family + " " + table;
  return nft_run("add table " + t + "\ndelete table " + t + "\n");
}

NftTable::NftTable(NftTable&& o) noexcept
    : cfg_(std::move(o.cfg_)), owned_(std::exchange(o.owned_, false)) {}

NftTable& NftTable::operator=(NftTable&& o) noexcept {
  if (this != &o) {
    (void)remove();
    cfg_ = std::move(o.cfg_);
    owned_ = std::exchange(o.owned_, false);
  }
  return *this;
}

NftTable::~NftTable() { (void)remove(); }

base::Result<NftTable> NftTable::create(const NftConfig& cfg) {
  auto text = nft_ruleset(cfg);
  if (!text) return tl::unexpected(text.error());
  if (auto r = nft_run(*text); !r) return tl::unexpected(r.error());
  NftTable t;
  t.cfg_ = cfg;
  t.owned_ = true;
  return t;
}

base::Result<void> NftTable::remove() {
  if (!owned_) return {};
  auto r = nft_delete_table(cfg_.family, cfg_.table);
  if (r) owned_ = false;
  return r;
}

}  // namespace mtw::netns
