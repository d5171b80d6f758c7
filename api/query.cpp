// Query strings: a map of decoded parameters, typed values checked.
#include "api/query.h"

#include <charconv>

#include "api/dates.h"

namespace mtw::api::detail {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

ApiResult<Query> parse_query(std::string_view q) {
  Query out;
  while (!q.empty()) {
    const auto amp = q.find('&');
    const std::string_view part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    if (part.empty()) continue;
    const auto eq = part.find('=');
    auto key = percent_decode(part.substr(0, eq));
    auto value = percent_decode(eq == std::string_view::npos ? "" : part.substr(eq + 1));
    if (!key || !value) return bad("", "malformed query string");
    if (out.contains(*key)) return bad(*key, "query parameter " + *key + " given twice");
    out.emplace(std::move(*key), std::move(*value));
  }
  return out;
}

ApiResult<void> allow_params(const Query& q, const std::vector<std::string_view>& allowed) {
  for (const auto& [k, v] : q) {
    bool ok = false;
    for (auto a : allowed) ok = ok || k == a;
    if (!ok) return bad(k, "unknown query parameter " + k);
  }
  return {};
}

ApiResult<std::uint64_t> query_uint(const Query& q, const std::string& key, std::uint64_t dflt,
                                    std::uint64_t lo, std::uint64_t hi) {
  auto it = q.find(key);
  if (it == q.end()) return dflt;
  const std::string& s = it->second;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size() || v < lo || v > hi)
    return bad(key,
               key + " must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
  return v;
}

ApiResult<std::int64_t> query_day(const Query& q, const std::string& key, std::int64_t dflt,
                                  bool month_ok) {
  auto it = q.find(key);
  if (it == q.end()) return dflt;
  if (auto d = parse_day(it->second)) return *d;
  if (month_ok)
    if (auto m = parse_month(it->second)) return days_from_civil(m->first, m->second, 1);
  return bad(key, key + " must be a date YYYY-MM-DD" + std::string(month_ok ? " or YYYY-MM" : ""));
}

}  // namespace mtw::api::detail
