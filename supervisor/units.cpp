#include "supervisor/units.h"

#include <array>
#include <cctype>
#include <limits>
#include <optional>

namespace mtw::supervisor {
namespace {

__extension__ using U128 = unsigned __int128;

// SQLite integers are signed 64-bit; anything we accept must fit there.
constexpr std::uint64_t kMaxValue = std::numeric_limits<std::int64_t>::max();
// More fraction digits than this carry no meaning for byte or bit counts.
constexpr std::size_t kMaxFractionDigits = 9;

struct Unit {
  std::string_view name;
  std::uint64_t multiplier;
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

constexpr std::uint64_t kKi = 1024, kMi = kKi * 1024, kGi = kMi * 1024, kTi = kGi * 1024;
constexpr std::uint64_t kK = 1000, kM = kK * 1000, kG = kM * 1000, kT = kG * 1000;

// Size suffixes, matched case-insensitively.
constexpr std::array kSizeUnits = {
    Unit{"", 1},      Unit{"b", 1},     Unit{"k", kK},    Unit{"kb", kK},   Unit{"m", kM},
    Unit{"mb", kM},   Unit{"g", kG},    Unit{"gb", kG},   Unit{"t", kT},    Unit{"tb", kT},
    Unit{"kib", kKi}, Unit{"mib", kMi}, Unit{"gib", kGi}, Unit{"tib", kTi},
};

// Bit-rate suffixes, matched case-insensitively (after an optional "/s" is stripped).
constexpr std::array kBitUnits = {
    Unit{"", 1},      Unit{"bit", 1},   Unit{"bits", 1},    Unit{"kbit", kK},   Unit{"mbit", kM},
    Unit{"gbit", kG}, Unit{"tbit", kT}, Unit{"kibit", kKi}, Unit{"mibit", kMi}, Unit{"gibit", kGi},
    Unit{"bps", 1},   Unit{"kbps", kK}, Unit{"mbps", kM},   Unit{"gbps", kG},
};

// Byte-rate suffixes, matched exactly (the capital B is what says "bytes").
constexpr std::array kByteRateUnits = {
    Unit{"B/s", 8},       Unit{"kB/s", 8 * kK},   Unit{"KB/s", 8 * kK},   Unit{"MB/s", 8 * kM},
    Unit{"GB/s", 8 * kG}, Unit{"KiB/s", 8 * kKi}, Unit{"MiB/s", 8 * kMi}, Unit{"GiB/s", 8 * kGi},
};

struct Number {
  std::uint64_t whole = 0;
  std::uint64_t frac = 0;        // fraction digits as an integer
  std::uint64_t frac_scale = 1;  // 10^(number of fraction digits)
  std::string_view rest;         // unit text, leading spaces removed
};

Result<Number> parse_number(std::string_view text, std::string_view what) {
  Number n;
  std::size_t i = 0;
  bool any_digit = false;
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
    any_digit = true;
    const auto digit = static_cast<std::uint64_t>(text[i] - '0');
    if (n.whole > (kMaxValue - digit) / 10)
      return base::fail(Errc::kTooLarge, std::string(what) + " too large");
    n.whole = n.whole * 10 + digit;
  }
  if (i < text.size() && text[i] == '.') {
    ++i;
    std::size_t digits = 0;
    for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i, ++digits) {
      any_digit = true;
      if (digits >= kMaxFractionDigits) continue;  // finer than a byte: ignore
      n.frac = n.frac * 10 + static_cast<std::uint64_t>(text[i] - '0');
      n.frac_scale *= 10;
    }
    if (digits == 0)
      return base::fail(Errc::kBadInput, std::string(what) + ": digit expected after '.'");
  }
  if (!any_digit)
    return base::fail(Errc::kBadInput, std::string(what) + ": expected a number, e.g. " +
                                           (what == "size" ? "\"10GiB\"" : "\"20mbit\""));
  while (i < text.size() && text[i] == ' ') ++i;
  n.rest = text.substr(i);
  return n;
}

Result<std::uint64_t> scale(const Number& n, std::uint64_t mult, std::string_view what) {
  U128 v = static_cast<U128>(n.whole) * mult + static_cast<U128>(n.frac) * mult / n.frac_scale;
  if (v > kMaxValue) return base::fail(Errc::kTooLarge, std::string(what) + " too large");
  return static_cast<std::uint64_t>(v);
}

template <std::size_t N>
std::optional<std::uint64_t> find_unit(const std::array<Unit, N>& units, std::string_view key) {
  for (const Unit& u : units)
    if (u.name == key) return u.multiplier;
  return std::nullopt;
}

}  // namespace

Result<std::uint64_t> parse_size(std::string_view text) {
  auto n = parse_number(text, "size");
  if (!n) return tl::unexpected(n.error());
  auto mult = find_unit(kSizeUnits, lower(n->rest));
  if (!mult)
    return base::fail(Errc::kBadInput, "size: unknown unit \"" + std::string(n->rest) +
                                           "\" (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)");
  return scale(*n, *mult, "size");
}

Result<std::uint64_t> parse_rate(std::string_view text) {
  auto n = parse_number(text, "rate");
  if (!n) return tl::unexpected(n.error());
  if (auto mult = find_unit(kByteRateUnits, n->rest)) return scale(*n, *mult, "rate");
  std::string unit = lower(n->rest);
  if (unit.size() > 2 && unit.ends_with("/s")) unit.resize(unit.size() - 2);
  if (auto mult = find_unit(kBitUnits, unit)) return scale(*n, *mult, "rate");
  return base::fail(Errc::kBadInput,
                    "rate: unknown unit \"" + std::string(n->rest) +
                        "\" (use bit, kbit, mbit, gbit, Mbit/s, or MB/s for bytes)");
}

std::string format_size(std::uint64_t bytes) {
  constexpr std::array<Unit, 4> kUnits = {Unit{"TiB", kTi}, Unit{"GiB", kGi}, Unit{"MiB", kMi},
                                          Unit{"KiB", kKi}};
  for (const Unit& u : kUnits)
    if (bytes != 0 && bytes % u.multiplier == 0)
      return std::to_string(bytes / u.multiplier) + std::string(u.name);
  return std::to_string(bytes) + "B";
}

std::string format_rate(std::uint64_t bits_per_s) {
  constexpr std::array<Unit, 4> kUnits = {Unit{"tbit", kT}, Unit{"gbit", kG}, Unit{"mbit", kM},
                                          Unit{"kbit", kK}};
  for (const Unit& u : kUnits)
    if (bits_per_s != 0 && bits_per_s % u.multiplier == 0)
      return std::to_string(bits_per_s / u.multiplier) + std::string(u.name);
  return std::to_string(bits_per_s) + "bit";
}

}  // namespace mtw::supervisor
