// Gate admission: who may hold an unfinished-handshake slot. A client's
// source is keyed twice: by its host (IPv4 /32, IPv6 /source_prefix, default
// /64, because one machine routinely owns a whole /64) and by its subnet
// (IPv4 /ipv4_subnet, IPv6 /ipv6_subnet), and each key may hold only so many
// handshakes at once. Pure bookkeeping over address bytes, O(1) per
// connection; the gate does the sockets.
// Not thread-safe (the gate is single-threaded).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>

namespace mtw::gate {

struct AdmissionLimits {
  std::uint32_t per_source = 128;        // unfinished handshakes per host key; 0 = no cap
  std::uint32_t per_subnet = 512;        // unfinished handshakes per subnet key; 0 = no cap
  std::uint8_t ipv6_source_prefix = 64;  // 1..128
  std::uint8_t ipv6_subnet_prefix = 48;  // 1..128
  std::uint8_t ipv4_subnet_prefix = 24;  // 1..32
};

// Opaque map keys: family, prefix length and the masked address bytes.
struct SourceKeys {
  std::string source;
  std::string subnet;
  friend bool operator==(const SourceKeys&, const SourceKeys&) = default;
};

// `addr` is 4 (IPv4) or 16 (IPv6) bytes in network order; an IPv4-mapped
// IPv6 address (::ffff:a.b.c.d, from a dual-stack listener) is keyed as IPv4.
// Any other length gives empty keys, which are never capped.
[[nodiscard]] SourceKeys source_keys(std::span<const std::byte> addr, const AdmissionLimits& l);

class AdmissionTable;

// One held slot; gives it back on release() or destruction. Move-only; the
// table must outlive it.
class AdmissionTicket {
 public:
  AdmissionTicket() = default;
  AdmissionTicket(AdmissionTicket&& o) noexcept;
  AdmissionTicket& operator=(AdmissionTicket&& o) noexcept;
  AdmissionTicket(const AdmissionTicket&) = delete;
  AdmissionTicket& operator=(const AdmissionTicket&) = delete;
  ~AdmissionTicket() { release(); }
  void release() noexcept;
  bool held() const noexcept { return table_ != nullptr; }

 private:
  friend class AdmissionTable;
  AdmissionTicket(AdmissionTable* t, SourceKeys k) : table_(t), keys_(std::move(k)) {}
  AdmissionTable* table_ = nullptr;
  SourceKeys keys_;
};

class AdmissionTable {
 public:
  enum class Verdict { kAdmit, kSourceFull, kSubnetFull };

  explicit AdmissionTable(AdmissionLimits l) : limits_(l) {}
  const AdmissionLimits& limits() const noexcept { return limits_; }

  [[nodiscard]] Verdict check(const SourceKeys& k) const;
  // Takes a slot when check() says kAdmit; otherwise returns an empty ticket.
  [[nodiscard]] AdmissionTicket admit(const SourceKeys& k);
  // Unfinished handshakes held under `key` (a source or a subnet key).
  std::uint32_t held(const std::string& key) const;
  // Keys with at least one slot held (the table's memory).
  std::size_t keys() const noexcept { return counts_.size(); }

 private:
  friend class AdmissionTicket;
  void give_back(const SourceKeys& k) noexcept;
  AdmissionLimits limits_;
  std::unordered_map<std::string, std::uint32_t> counts_;
};

}  // namespace mtw::gate
