// Human output of mtwardenctl: sizes, rates, times, aligned tables, key:
// value blocks, pretty JSON, and the rendering of each API response kind.
// Renderers tolerate missing or unexpected fields (printed as "-"): the CLI
// must stay useful when the API grows. Thread-safe: pure functions.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mtw::ctl {

// "512 B", "1.5 KiB", "50 GiB" (binary units, one decimal, ".0" dropped).
std::string human_size(std::uint64_t bytes);
// "0 bit/s", "800 bit/s", "1.5 kbit/s", "20 Mbit/s" (decimal units).
std::string human_rate(std::uint64_t bits_per_s);
// Unix seconds -> "2026-11-23" (UTC).
std::string format_date(std::int64_t unix_s);
// Unix seconds -> "2026-11-23 00:58:11Z" (UTC).
std::string format_time(std::int64_t unix_s);
// "3d 4h", "5h 12m", "42s".
std::string format_duration(std::uint64_t seconds);

// `s` safe to print on a terminal: C0 control characters, DEL and the C1
// controls (U+0080..U+009F, which some terminals obey as escape sequences)
// become \n, \t, \r, \xHH or \u00HH; everything else is unchanged. Every
// string the API returns goes through it in human output (a comment is
// stored as given, so it may hold anything).
std::string printable(std::string_view s);

// Columns padded to the widest cell, two spaces apart; trailing blanks trimmed.
std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows);
// "key:  value" lines, keys padded to the widest.
std::string render_block(const std::vector<std::pair<std::string, std::string>>& lines);

// Two-space indented JSON, keys in the API's order, ending in '\n'.
std::string pretty_json(const boost::json::value& v);

// "<code>: <message> (field <f>)" from an API error body; empty when the
// body is not the API's error shape.
std::string render_api_error(const boost::json::value& body);

// Human renderings of the API's responses (each ends in '\n').
std::string render_user_list(const boost::json::value& v);      // {"users":[...]}
std::string render_user(const boost::json::value& v);           // one user object
std::string render_status(const boost::json::value& v);         // GET /v1/status
std::string render_mask_profiles(const boost::json::value& v);  // GET /v1/mask-profiles
std::string render_fleet(const boost::json::value& v);          // GET /v1/fleet
std::string render_upstreams(const boost::json::value& v);      // GET /v1/upstreams
std::string render_usage(const boost::json::value& v);          // {"by","items"}
std::string render_links(const boost::json::value& v);          // {"host","ports","tg","https"}
std::string render_events(const boost::json::value& v);         // {"events":[...]}
std::string render_ips(const boost::json::value& v);  // {"name","ipv6_prefix","truncated","ips"}

}  // namespace mtw::ctl
