#include "gate/gate_admission.h"

#include <algorithm>
#include <array>
#include <utility>

namespace mtw::gate {
namespace {

std::string masked_key(char family, std::span<const std::byte> addr, unsigned prefix) {
  std::string k;
  k.reserve(2 + addr.size());
  k.push_back(family);
  k.push_back(static_cast<char>(prefix));
  for (std::size_t i = 0; i < addr.size(); ++i) {
    const unsigned bits = prefix > 8 * i ? std::min(8u, prefix - 8 * static_cast<unsigned>(i)) : 0;
    const auto mask = static_cast<unsigned char>(bits == 0 ? 0 : 0xFFu << (8 - bits));
    k.push_back(static_cast<char>(static_cast<unsigned char>(addr[i]) & mask));
  }
  return k;
}

bool v4_mapped(std::span<const std::byte> a) {
  for (std::size_t i = 0; i < 10; ++i) {
    if (a[i] != std::byte{0}) return false;
  }
  return a[10] == std::byte{0xFF} && a[11] == std::byte{0xFF};
}

}  // namespace

SourceKeys source_keys(std::span<const std::byte> addr, const AdmissionLimits& l) {
  if (addr.size() == 16 && v4_mapped(addr)) addr = addr.subspan(12);
  if (addr.size() == 4) {
    return {masked_key('4', addr, 32), masked_key('4', addr, l.ipv4_subnet_prefix)};
  }
  if (addr.size() == 16) {
    return {masked_key('6', addr, l.ipv6_source_prefix),
            masked_key('6', addr, l.ipv6_subnet_prefix)};
  }
  return {};
}

AdmissionTicket::AdmissionTicket(AdmissionTicket&& o) noexcept
    : table_(std::exchange(o.table_, nullptr)), keys_(std::move(o.keys_)) {}

AdmissionTicket& AdmissionTicket::operator=(AdmissionTicket&& o) noexcept {
  if (this != &o) {
    release();
    table_ = std::exchange(o.table_, nullptr);
    keys_ = std::move(o.keys_);
  }
  return *this;
}

void AdmissionTicket::release() noexcept {
  if (table_ == nullptr) return;
  std::exchange(table_, nullptr)->give_back(keys_);
}

std::uint32_t AdmissionTable::held(const std::string& key) const {
  auto it = counts_.find(key);
  return it == counts_.end() ? 0 : it->second;
}

AdmissionTable::Verdict AdmissionTable::check(const SourceKeys& k) const {
  if (k.source.empty()) return Verdict::kAdmit;
  if (limits_.per_source != 0 && held(k.source) >= limits_.per_source) return Verdict::kSourceFull;
  if (limits_.per_subnet != 0 && held(k.subnet) >= limits_.per_subnet) return Verdict::kSubnetFull;
  return Verdict::kAdmit;
}

AdmissionTicket AdmissionTable::admit(const SourceKeys& k) {
  if (check(k) != Verdict::kAdmit) return {};
  if (!k.source.empty()) {
    ++counts_[k.source];
    // An IPv4 /32 subnet equals its source key: count it once.
    if (k.subnet != k.source) ++counts_[k.subnet];
  }
  return AdmissionTicket(this, k);
}

void AdmissionTable::give_back(const SourceKeys& k) noexcept {
  if (k.source.empty()) return;
  auto drop = [&](const std::string& key) {
    auto it = counts_.find(key);
    if (it != counts_.end() && --it->second == 0) counts_.erase(it);
  };
  drop(k.source);
  if (k.subnet != k.source) drop(k.subnet);
}

}  // namespace mtw::gate
