// Text forms of sizes and rates used in the configuration file and the API:
// "10GiB", "500MB", "20mbit", "2Mbit/s", "2.5MB/s". Pure, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"

namespace mtw::supervisor {

using base::Errc;
using base::Error;
using base::Result;

// Bytes. Plain digits are bytes. Suffixes (case-insensitive except that the
// binary "i" forms are also accepted in any case): B; k/K/kB/KB = 10^3,
// M/MB = 10^6, G/GB = 10^9, T/TB = 10^12; KiB/MiB/GiB/TiB = 2^10..2^40.
// A decimal fraction is allowed ("1.5GiB"); the result rounds down.
// Fails with kBadInput on anything else, kTooLarge past 2^63-1 (SQLite's
// integer range, so any size we accept can be stored).
[[nodiscard]] Result<std::uint64_t> parse_size(std::string_view text);

// Bits per second. Plain digits are bits/s. Bit units, case-insensitive:
// bit, kbit, mbit, gbit, tbit (10^3 steps), kibit, mibit, gibit (2^10 steps),
// each optionally followed by "/s", and the networking spellings bps, kbps,
// mbps, gbps (bits, NOT tc's bytes meaning). Byte units need a capital B and
// "/s": B/s, kB/s|KB/s, MB/s, GB/s, KiB/s, MiB/s, GiB/s (x8).
// Fails with kBadInput / kTooLarge like parse_size.
[[nodiscard]] Result<std::uint64_t> parse_rate(std::string_view text);

// Inverse helpers for messages and docs: "10GiB" when exact, else bytes
// ("1234B"); "20mbit" when exact in 10^3 steps, else "1234bit".
std::string format_size(std::uint64_t bytes);
std::string format_rate(std::uint64_t bits_per_s);

}  // namespace mtw::supervisor
