#include "netns/addr_pool.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <utility>

namespace mtw::netns {
namespace {

using base::Errc;
using base::fail;

// Splits "addr/len"; len must be 0..max.
base::Result<std::pair<std::string, int>> split_cidr(std::string_view text, int max) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos)
    return fail(Errc::kBadInput, "CIDR without /len: " + std::string(text));
  std::string len_text(text.substr(slash + 1));
  if (len_text.empty() || len_text.size() > 3 ||
      !std::all_of(len_text.begin(), len_text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return fail(Errc::kBadInput, "bad prefix length in " + std::string(text));
  }
  int len = std::stoi(len_text);
  if (len > max) return fail(Errc::kBadInput, "prefix length too large in " + std::string(text));
  return std::make_pair(std::string(text.substr(0, slash)), len);
}

// Adds `v` to the 128-bit big-endian address `a`, starting at bit position
// (from the right) `shift`: a += v << shift.
in6_addr add_shifted(in6_addr a, std::uint64_t v, int shift) {
  unsigned carry = 0;
  for (int byte = 15; byte >= 0; --byte) {
    int bit_lo = (15 - byte) * 8;  // bit index of this byte's LSB
    unsigned add = 0;
    if (bit_lo + 8 > shift && bit_lo - shift < 64) {
      int off = bit_lo - shift;
      std::uint64_t part = off >= 0 ? (v >> off) : (v << -off);
      add = static_cast<unsigned>(part & 0xff);
    }
    unsigned sum = a.s6_addr[byte] + add + carry;
    a.s6_addr[byte] = static_cast<std::uint8_t>(sum & 0xff);
    carry = sum >> 8;
  }
  return a;
}

}  // namespace

base::Result<std::pair<in_addr, int>> parse_cidr4(std::string_view text) {
  auto parts = split_cidr(text, 32);
  if (!parts) return tl::unexpected(parts.error());
  in_addr a{};
  if (inet_pton(AF_INET, parts->first.c_str(), &a) != 1) {
    return fail(Errc::kBadInput, "bad IPv4 address in " + std::string(text));
  }
  return std::make_pair(a, parts->second);
}

base::Result<std::pair<in6_addr, int>> parse_cidr6(std::string_view text) {
  auto parts = split_cidr(text, 128);
  if (!parts) return tl::unexpected(parts.error());
  in6_addr a{};
  if (inet_pton(AF_INET6, parts->first.c_str(), &a) != 1) {
    return fail(Errc::kBadInput, "bad IPv6 address in " + std::string(text));
  }
  return std::make_pair(a, parts->second);
}

// Not inet_ntop: glibc formats each octet with sprintf, and this runs for
// every status request (the cell's address) with a cold cache.
std::string to_string(const in_addr& a) {
  const auto* b = reinterpret_cast<const unsigned char*>(&a.s_addr);
  std::string out;
  out.reserve(INET_ADDRSTRLEN - 1);
  for (int i = 0; i < 4; ++i) {
    if (i) out += '.';
    char d[3];
    out.append(d, std::to_chars(d, d + sizeof d, b[i]).ptr);
  }
  return out;
}

std::string to_string(const in6_addr& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, &a, buf, sizeof buf);
  return buf;
}

base::Result<AddrPool> AddrPool::create(const PoolConfig& cfg) {
  AddrPool p;
  p.cfg_ = cfg;
  auto v4 = parse_cidr4(cfg.v4);
  if (!v4) return tl::unexpected(v4.error());
  if (cfg.v4_cell_prefix != 30 && cfg.v4_cell_prefix != 31) {
    return fail(Errc::kBadInput, "v4_cell_prefix must be 30 or 31");
  }
  if (v4->second > cfg.v4_cell_prefix)
    return fail(Errc::kBadInput, "IPv4 pool smaller than one cell");
  p.plen4_ = v4->second;
  std::uint32_t mask = p.plen4_ == 0 ? 0 : ~std::uint32_t{0} << (32 - p.plen4_);
  p.base4_ = ntohl(v4->first.s_addr) & mask;
  // Cap the slot count: 2^20 cells is far past what one host runs, and the
  // bitmap stays small even for a /8 pool.
  int bits4 = std::min(cfg.v4_cell_prefix - p.plen4_, 20);
  std::uint64_t slots = std::uint64_t{1} << bits4;
  if (!cfg.v6.empty()) {
    auto v6 = parse_cidr6(cfg.v6);
    if (!v6) return tl::unexpected(v6.error());
    if (cfg.v6_cell_prefix != 64 && cfg.v6_cell_prefix != 127) {
      return fail(Errc::kBadInput, "v6_cell_prefix must be 64 or 127");
    }
    if (v6->second > cfg.v6_cell_prefix)
      return fail(Errc::kBadInput, "IPv6 pool smaller than one cell");
    if ((v6->first.s6_addr[0] & 0xfe) != 0xfc) {
      return fail(Errc::kBadInput, "IPv6 pool must be ULA (fc00::/7): " + cfg.v6);
    }
    p.v6_ = true;
    p.plen6_ = v6->second;
    p.base6_ = v6->first;
    for (int bit = p.plen6_; bit < 128; ++bit) p.base6_.s6_addr[bit / 8] &= ~(0x80u >> (bit % 8));
    int bits6 = std::min(cfg.v6_cell_prefix - p.plen6_, 20);
    slots = std::min(slots, std::uint64_t{1} << bits6);
  }
  p.used_.assign(slots, false);
  return p;
}

base::Result<std::uint32_t> AddrPool::allocate() {
  for (std::uint32_t s = hint_; s < used_.size(); ++s) {
    if (!used_[s]) {
      used_[s] = true;
      ++in_use_;
      hint_ = s + 1;
      return s;
    }
  }
  return fail(Errc::kExhausted, "cell address pool exhausted pool=" + cfg_.v4 +
                                    " cells=" + std::to_string(used_.size()));
}

base::Result<void> AddrPool::reserve(std::uint32_t slot) {
  if (slot >= used_.size())
    return fail(Errc::kBadInput, "slot out of range " + std::to_string(slot));
  if (used_[slot]) return fail(Errc::kExists, "slot already in use " + std::to_string(slot));
  used_[slot] = true;
  ++in_use_;
  return {};
}

void AddrPool::release(std::uint32_t slot) noexcept {
  if (slot >= used_.size() || !used_[slot]) return;
  used_[slot] = false;
  --in_use_;
  hint_ = std::min(hint_, slot);
}

CellAddrs AddrPool::addrs(std::uint32_t slot) const {
  CellAddrs a;
  a.slot = slot;
  a.prefix4 = cfg_.v4_cell_prefix;
  std::uint32_t net = base4_ + (slot << (32 - cfg_.v4_cell_prefix));
  // /30: .0 network, .1 host, .2 cell, .3 broadcast. /31 (RFC 3021): .0 host, .1 cell.
  std::uint32_t first = cfg_.v4_cell_prefix == 30 ? 1 : 0;
  a.host4.s_addr = htonl(net + first);
  a.cell4.s_addr = htonl(net + first + 1);
  if (v6_) {
    a.has_v6 = true;
    a.prefix6 = cfg_.v6_cell_prefix;
    in6_addr net6 = add_shifted(base6_, slot, 128 - cfg_.v6_cell_prefix);
    // /64: ::1 host, ::2 cell. /127 (RFC 6164): ::0 host, ::1 cell.
    std::uint64_t first6 = cfg_.v6_cell_prefix == 64 ? 1 : 0;
    a.host6 = add_shifted(net6, first6, 0);
    a.cell6 = add_shifted(net6, first6 + 1, 0);
  }
  return a;
}

std::optional<std::uint32_t> AddrPool::slot_of_host(in_addr host4) const {
  std::uint32_t h = ntohl(host4.s_addr);
  if (h < base4_) return std::nullopt;
  std::uint32_t off = h - base4_;
  std::uint32_t slot = off >> (32 - cfg_.v4_cell_prefix);
  if (slot >= used_.size()) return std::nullopt;
  if (addrs(slot).host4.s_addr != host4.s_addr) return std::nullopt;
  return slot;
}

std::string AddrPool::v4_cidr() const {
  in_addr a{};
  a.s_addr = htonl(base4_);
  return to_string(a) + "/" + std::to_string(plen4_);
}

std::string AddrPool::v6_cidr() const {
  if (!v6_) return {};
  return to_string(base6_) + "/" + std::to_string(plen6_);
}

AddrLease::AddrLease(AddrLease&& o) noexcept
    : pool_(std::exchange(o.pool_, nullptr)), slot_(o.slot_) {}

AddrLease& AddrLease::operator=(AddrLease&& o) noexcept {
  if (this != &o) {
    reset();
    pool_ = std::exchange(o.pool_, nullptr);
    slot_ = o.slot_;
  }
  return *this;
}

void AddrLease::reset() noexcept {
  if (pool_ != nullptr) std::exchange(pool_, nullptr)->release(slot_);
}

}  // namespace mtw::netns
