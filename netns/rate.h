// Shaper parameters: a rate in bits per second of TCP payload (what a
// client sees: a user limited to 2 Mbit/s receives 2 Mbit/s of data), its
// conversion to the link-layer rate htb bills, and the bucket sizes derived
// from it. Pure; thread-safe.
#pragma once

#include <cstdint>

#include "base/error.h"

namespace mtw::netns {

// Bytes of one full-size frame on a veth: MTU 1500 + 14-byte Ethernet header.
inline constexpr std::uint32_t kFrameBytes = 1514;
// TCP payload of that frame: 1500 - 20 (IPv4) - 20 (TCP) - 12 (the
// timestamp option Linux sends on every segment).
inline constexpr std::uint32_t kPayloadPerFrame = 1448;

// The link-layer rate that carries `payload_bps` of TCP payload in
// full-size segments: payload * kFrameBytes / kPayloadPerFrame (+4.56 %),
// rounded up. htb bills every packet's link-layer length (a GSO packet as
// its segments, each with its headers), so a class at this rate delivers
// the payload rate to a bulk transfer. htb's own overhead parameter cannot
// do this: it adds bytes per skb, not per segment, and never subtracts.
// Assumptions, and what they cost: IPv6 segments carry 20 bytes less
// payload (payload 1.4 % under the rate); pure ACKs and small packets (chat
// traffic, the reverse direction's ACKs when both directions are busy) are
// billed at their size, as are retransmissions. Saturates at UINT64_MAX.
std::uint64_t wire_bps(std::uint64_t payload_bps) noexcept;

struct Rate {
  std::uint64_t bits_per_sec = 0;  // TCP payload rate; htb runs at wire_bps() of it
  std::uint32_t burst_bytes = 0;   // 0 = derive from the rate (burst_for_rate)
  std::uint32_t queue_bytes = 0;   // leaf bfifo limit; 0 = derive (queue_limit_for_rate)
};

struct ShaperRates {
  Rate download;  // towards the cell: host-end veth egress
  Rate upload;    // from the cell: cell-end veth egress
};

// Lowest/highest accepted rate: below 8 kbit/s htb's timing granularity makes
// the rate meaningless; above 100 Gbit/s a veth can't go anyway.
inline constexpr std::uint64_t kMinRateBps = 8'000;
inline constexpr std::uint64_t kMaxRateBps = 100'000'000'000;

// Burst that lets TCP keep the pipe full: 10 ms worth of bytes at `bps`,
// at least 4 full frames (a smaller bucket stalls TCP for whole seconds after
// a rate change, see kernel-facts.md), at most 16 MiB.
std::uint32_t burst_for_rate(std::uint64_t bits_per_sec) noexcept;

// htb quantum (bytes a class may send per round): rate/10 per r2q, clamped
// to [one frame, 200000] so the kernel does not warn "quantum is big".
std::uint32_t quantum_for_rate(std::uint64_t bits_per_sec) noexcept;

// Largest packet a queue may have to hold: a GSO/GRO super-packet (64 KiB,
// the veth's default gso_max_size) plus headers. htb does not segment GSO
// packets, so a leaf bfifo smaller than this would drop every forwarded GRO
// packet and stall the flow.
inline constexpr std::uint32_t kMaxGsoBytes = 65536 + 2 * kFrameBytes;

// Byte limit of the leaf bfifo under htb class 1:1: 100 ms of traffic at
// `bps` (the worst queueing delay a throttled user sees, instead of the
// default 1000-packet pfifo's 2.4 s at 5 Mbit/s), at least kMaxGsoBytes, at
// most 32 MiB.
std::uint32_t queue_limit_for_rate(std::uint64_t bits_per_sec) noexcept;

// The burst to program: `r.burst_bytes` or the derived one. kBadInput when
// the rate is outside [kMinRateBps, kMaxRateBps] or the burst is below one frame.
[[nodiscard]] base::Result<std::uint32_t> effective_burst(const Rate& r);

// The leaf queue limit to program: `r.queue_bytes` or the derived one.
// kBadInput when an explicit limit is below kMaxGsoBytes.
[[nodiscard]] base::Result<std::uint32_t> effective_queue(const Rate& r);

// True when `a` and `b` program the same shaper.
inline bool same_rate(const Rate& a, const Rate& b) noexcept {
  return a.bits_per_sec == b.bits_per_sec && a.burst_bytes == b.burst_bytes &&
         a.queue_bytes == b.queue_bytes;
}

}  // namespace mtw::netns
