// Human formatting for mtwardenctl (see format.h).
#include "ctl/format.h"

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <initializer_list>

namespace mtw::ctl {
namespace json = boost::json;

namespace {

// One decimal, ".0" dropped: 1.5, 50, 1023.9.
std::string one_decimal(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  std::string s = buf;
  if (s.ends_with(".0")) s.resize(s.size() - 2);
  return s;
}

const json::value* at(const json::value& v, std::initializer_list<std::string_view> path) {
  const json::value* cur = &v;
  for (std::string_view key : path) {
    const json::object* o = cur->if_object();
    if (o == nullptr) return nullptr;
    auto it = o->find(key);
    if (it == o->end()) return nullptr;
    cur = &it->value();
  }
  return cur;
}

std::optional<std::int64_t> as_int(const json::value* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  if (v->is_double()) return static_cast<std::int64_t>(v->get_double());
  return std::nullopt;
}

std::string plain(const json::value* v) {
  if (v == nullptr || v->is_null()) return "-";
  if (v->is_string()) return v->get_string().empty() ? "-" : printable(v->get_string());
  if (v->is_bool()) return v->get_bool() ? "yes" : "no";
  return json::serialize(*v);
}

// The last day (UTC) a user with this expiry instant can connect: the API
// stores "--expires 2026-12-31" as 2027-01-01 00:00:00Z.
std::string last_day(std::int64_t expires_at) {
  return format_date(expires_at % 86400 == 0 ? expires_at - 86400 : expires_at);
}

bool is_time_key(std::string_view k) {
  return k.ends_with("_at") || k == "period_start" || k == "period_end" || k == "last_seen";
}

// "0 means no limit" keys (supervisor::Limits and their status mirrors).
bool zero_is_unlimited(std::string_view k) {
  return k == "rate_up_bps" || k == "rate_down_bps" || k == "quota_bytes" || k == "throttle_bps" ||
         k == "max_connections" || k == "max_unique_ips" || k == "shaper_up_bps" ||
         k == "shaper_down_bps";
}

// A scalar, formatted by what its key says it holds.
std::string scalar_text(std::string_view key, const json::value& v) {
  if (v.is_null())
    return key == "expires_at" || key == "period_end" || key == "resets_at" ? "never" : "-";
  auto n = as_int(&v);
  if (!n || v.is_double()) return plain(&v);
  std::uint64_t u = *n < 0 ? 0 : static_cast<std::uint64_t>(*n);
  if (u == 0 && zero_is_unlimited(key)) return "unlimited";
  if (key.ends_with("_bytes") || key.starts_with("bytes_")) return human_size(u);
  if (key.ends_with("_bps")) return human_rate(u);
  if (is_time_key(key)) return *n == 0 ? "-" : format_time(*n);
  if (key == "uptime_s") return format_duration(u);
  if (key.ends_with("_s")) return std::to_string(u) + " s";
  return std::to_string(*n);
}

void flatten(const std::string& prefix, std::string_view key, const json::value& v,
             std::vector<std::pair<std::string, std::string>>& out) {
  std::string name = prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
  if (const json::object* o = v.if_object()) {
    for (const auto& kv : *o) flatten(name, kv.key(), kv.value(), out);
    return;
  }
  if (const json::array* a = v.if_array()) {
    bool scalars = true;
    for (const auto& e : *a) scalars = scalars && !e.is_object() && !e.is_array();
    if (scalars) {
      std::string joined;
      for (const auto& e : *a) joined += (joined.empty() ? "" : ", ") + scalar_text(key, e);
      out.emplace_back(name, a->empty() ? "-" : joined);
      return;
    }
    for (std::size_t i = 0; i < a->size(); ++i) {
      flatten(prefix, std::string(key) + "[" + std::to_string(i) + "]", (*a)[i], out);
    }
    return;
  }
  out.emplace_back(name, scalar_text(key, v));
}

// Serialized JSON escapes C0 controls itself; DEL and C1 pass through raw.
// They become \u escapes here, which keeps the text valid JSON.
std::string printable_json(std::string s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    const auto next = i + 1 < s.size() ? static_cast<unsigned char>(s[i + 1]) : 0;
    char buf[8];
    if (c == 0x7f) {
      out += "\\u007f";
    } else if (c == 0xc2 && next >= 0x80 && next <= 0x9f) {
      std::snprintf(buf, sizeof buf, "\\u%04x", next);
      out += buf;
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

void pretty(const json::value& v, std::string& out, int indent) {
  auto pad = [&](int n) { out.append(static_cast<std::size_t>(n) * 2, ' '); };
  if (const json::object* o = v.if_object()) {
    if (o->empty()) {
      out += "{}";
      return;
    }
    out += "{\n";
    bool first = true;
    for (const auto& kv : *o) {
      if (!first) out += ",\n";
      first = false;
      pad(indent + 1);
      out += printable_json(json::serialize(json::value(kv.key())));
      out += ": ";
      pretty(kv.value(), out, indent + 1);
    }
    out += "\n";
    pad(indent);
    out += "}";
  } else if (const json::array* a = v.if_array()) {
    if (a->empty()) {
      out += "[]";
      return;
    }
    out += "[\n";
    for (std::size_t i = 0; i < a->size(); ++i) {
      if (i) out += ",\n";
      pad(indent + 1);
      pretty((*a)[i], out, indent + 1);
    }
    out += "\n";
    pad(indent);
    out += "]";
  } else {
    out += printable_json(json::serialize(v));
  }
}

}  // namespace

std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    const auto next = i + 1 < s.size() ? static_cast<unsigned char>(s[i + 1]) : 0;
    char buf[8];
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else if (c == 0xc2 && next >= 0x80 && next <= 0x9f) {  // UTF-8 of U+0080..U+009F
      std::snprintf(buf, sizeof buf, "\\u%04x", next);
      out += buf;
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string human_size(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes) / 1024;
  std::size_t i = 0;
  // Round first so 1048575 B reads "1 MiB", not "1024 KiB".
  while (i + 1 < std::size(kUnits) && std::stod(one_decimal(v)) >= 1024) {
    v /= 1024;
    ++i;
  }
  return one_decimal(v) + " " + kUnits[i];
}

std::string human_rate(std::uint64_t bps) {
  static constexpr const char* kUnits[] = {"kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"};
  if (bps < 1000) return std::to_string(bps) + " bit/s";
  double v = static_cast<double>(bps) / 1000;
  std::size_t i = 0;
  while (i + 1 < std::size(kUnits) && std::stod(one_decimal(v)) >= 1000) {
    v /= 1000;
    ++i;
  }
  return one_decimal(v) + " " + kUnits[i];
}

std::string format_date(std::int64_t unix_s) {
  using namespace std::chrono;
  auto days = floor<std::chrono::days>(sys_seconds(seconds(unix_s)));
  year_month_day ymd(days);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return buf;
}

std::string format_time(std::int64_t unix_s) {
  using namespace std::chrono;
  sys_seconds t{seconds(unix_s)};
  auto days = floor<std::chrono::days>(t);
  hh_mm_ss hms(t - days);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s %02d:%02d:%02dZ", format_date(unix_s).c_str(),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

std::string format_duration(std::uint64_t s) {
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m " + std::to_string(s % 60) + "s";
  if (s < 86400) return std::to_string(s / 3600) + "h " + std::to_string(s % 3600 / 60) + "m";
  return std::to_string(s / 86400) + "d " + std::to_string(s % 86400 / 3600) + "h";
}

std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(header.size(), 0);
  auto measure = [&](const std::vector<std::string>& r) {
    for (std::size_t i = 0; i < r.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], r[i].size());
  };
  measure(header);
  for (const auto& r : rows) measure(r);
  std::string out;
  auto line = [&](const std::vector<std::string>& r) {
    std::string l;
    for (std::size_t i = 0; i < width.size(); ++i) {
      std::string cell = i < r.size() ? r[i] : "";
      l += cell;
      if (i + 1 < width.size()) l.append(width[i] - cell.size() + 2, ' ');
    }
    while (l.ends_with(' ')) l.pop_back();
    out += l + "\n";
  };
  line(header);
  for (const auto& r : rows) line(r);
  return out;
}

std::string render_block(const std::vector<std::pair<std::string, std::string>>& lines) {
  std::size_t w = 0;
  for (const auto& [k, v] : lines) w = std::max(w, k.size());
  std::string out;
  for (const auto& [k, v] : lines) {
    std::string l =
        k.empty() ? std::string(w + 2, ' ') : k + ":" + std::string(w - k.size() + 1, ' ');
    out += l + v + "\n";
  }
  return out;
}

std::string pretty_json(const json::value& v) {
  std::string out;
  pretty(v, out, 0);
  return out + "\n";
}

std::string render_api_error(const json::value& body) {
  const json::value* err = at(body, {"error"});
  if (err == nullptr || !err->is_object()) return "";
  std::string code = plain(at(*err, {"code"}));
  std::string out = code + ": " + plain(at(*err, {"message"}));
  const json::value* field = at(*err, {"field"});
  if (field != nullptr && field->is_string() && !field->get_string().empty()) {
    out += " (field " + printable(field->get_string()) + ")";
  }
  return out;
}

std::string render_user_list(const json::value& v) {
  const json::value* users = at(v, {"users"});
  if (users == nullptr || !users->is_array() || users->get_array().empty()) return "no users\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& u : users->get_array()) {
    const json::value* thr = at(u, {"status", "throttled"});
    std::string throttled = plain(thr);
    if (thr != nullptr && thr->is_bool() && thr->get_bool()) {
      const json::value* why = at(u, {"status", "throttle_reason"});
      if (why != nullptr && why->is_string() && !why->get_string().empty()) {
        throttled += " (" + printable(why->get_string()) + ")";
      }
    }
    const json::value* used = at(u, {"status", "quota", "used_bytes"});
    const json::value* quota = at(u, {"limits", "quota_bytes"});
    const json::value* expires = at(u, {"expires_at"});
    auto exp = as_int(expires);
    rows.push_back(
        {plain(at(u, {"name"})), plain(at(u, {"status", "state"})),
         plain(at(u, {"status", "mode"})), plain(at(u, {"enabled"})),
         plain(at(u, {"status", "connections"})), used ? scalar_text("used_bytes", *used) : "-",
         quota ? scalar_text("quota_bytes", *quota) : "-", throttled,
         exp ? last_day(*exp) : (expires && expires->is_null() ? "never" : plain(expires))});
  }
  return render_table(
      {"NAME", "STATE", "MODE", "ENABLED", "CONNS", "USAGE", "QUOTA", "THROTTLED", "EXPIRES"},
      rows);
}

std::string render_user(const json::value& v) {
  std::vector<std::pair<std::string, std::string>> head;
  const json::object* o = v.if_object();
  if (o == nullptr) return plain(&v) + "\n";
  for (const auto& kv : *o) {
    std::string_view k = kv.key();
    if (k == "limits" || k == "overrides" || k == "status") continue;
    // null and [] differ: [egress] upstreams, or none at all.
    if (k == "upstreams" && kv.value().is_null()) {
      head.emplace_back("upstreams", "inherit ([egress] upstreams)");
      continue;
    }
    if (k == "upstreams" && kv.value().is_array() && kv.value().get_array().empty()) {
      head.emplace_back("upstreams", "direct");
      continue;
    }
    if (k == "secrets" && kv.value().is_array()) {
      bool first = true;
      for (const auto& s : kv.value().get_array()) {
        std::string line = plain(at(s, {"secret"}));
        auto exp = as_int(at(s, {"expires_at"}));
        if (exp) line += "  (expires " + format_time(*exp) + ")";
        head.emplace_back(first ? "secrets" : "", line);
        first = false;
      }
      if (first) head.emplace_back("secrets", "-");
      continue;
    }
    flatten("", k, kv.value(), head);
  }
  std::string out = render_block(head);
  if (const json::value* limits = at(v, {"limits"}); limits && limits->is_object()) {
    const json::value* overrides = at(v, {"overrides"});
    std::vector<std::pair<std::string, std::string>> lines;
    for (const auto& kv : limits->get_object()) {
      std::string text = scalar_text(kv.key(), kv.value());
      const json::value* ov = overrides ? at(*overrides, {kv.key()}) : nullptr;
      if (ov != nullptr && !ov->is_null()) text += "  (set for this user)";
      lines.emplace_back("  " + std::string(kv.key()), text);
    }
    out += "limits:\n" + render_block(lines);
  }
  if (const json::value* status = at(v, {"status"}); status && status->is_object()) {
    std::vector<std::pair<std::string, std::string>> lines;
    for (const auto& kv : status->get_object()) flatten("", kv.key(), kv.value(), lines);
    for (auto& l : lines) l.first = "  " + l.first;
    out += "status:\n" + render_block(lines);
  }
  return out;
}

std::string render_status(const json::value& v) {
  std::vector<std::pair<std::string, std::string>> lines;
  if (const json::object* o = v.if_object()) {
    for (const auto& kv : *o) flatten("", kv.key(), kv.value(), lines);
  }
  return render_block(lines);
}

std::string render_usage(const json::value& v) {
  const json::value* items = at(v, {"items"});
  std::string by = plain(at(v, {"by"}));
  if (items == nullptr || !items->is_array() || items->get_array().empty())
    return "no usage recorded\n";
  std::vector<std::vector<std::string>> rows;
  std::uint64_t up = 0, down = 0, total = 0;
  for (const auto& it : items->get_array()) {
    auto u = as_int(at(it, {"bytes_up"})).value_or(0),
         d = as_int(at(it, {"bytes_down"})).value_or(0),
         t = as_int(at(it, {"bytes_total"})).value_or(u + d);
    up += u;
    down += d;
    total += t;
    rows.push_back({plain(at(it, {"date"})), human_size(u), human_size(d), human_size(t)});
  }
  rows.push_back({"total", human_size(up), human_size(down), human_size(total)});
  return render_table({by == "month" ? "MONTH" : "DATE", "UP", "DOWN", "TOTAL"}, rows);
}

std::string render_links(const json::value& v) {
  std::vector<std::pair<std::string, std::string>> head;
  flatten("", "host", at(v, {"host"}) ? *at(v, {"host"}) : json::value(nullptr), head);
  flatten("", "ports", at(v, {"ports"}) ? *at(v, {"ports"}) : json::value(nullptr), head);
  std::string out = render_block(head);
  for (std::string_view kind : {"tg", "https"}) {
    const json::value* list = at(v, {kind});
    if (list == nullptr || !list->is_array()) continue;
    for (const auto& l : list->get_array()) out += plain(&l) + "\n";
  }
  return out;
}

std::string render_ips(const json::value& v) {
  const json::value* ips = at(v, {"ips"});
  std::string out;
  if (ips == nullptr || !ips->is_array() || ips->get_array().empty()) {
    out = "no connection open\n";
  } else {
    std::vector<std::vector<std::string>> rows;
    for (const auto& i : ips->get_array())
      rows.push_back(
          {plain(at(i, {"address"})), plain(at(i, {"key"})), plain(at(i, {"connections"}))});
    out = render_table({"ADDRESS", "KEY", "CONNS"}, rows);
  }
  const json::value* truncated = at(v, {"truncated"});
  if (truncated != nullptr && truncated->is_bool() && truncated->get_bool())
    out += "(more addresses are open than the worker reports)\n";
  return out;
}

std::string render_events(const json::value& v) {
  const json::value* events = at(v, {"events"});
  if (events == nullptr || !events->is_array() || events->get_array().empty()) return "no events\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : events->get_array()) {
    auto t = as_int(at(e, {"at"}));
    rows.push_back({plain(at(e, {"seq"})), t ? format_time(*t) : "-", plain(at(e, {"user"})),
                    plain(at(e, {"kind"})), plain(at(e, {"detail"}))});
  }
  return render_table({"SEQ", "TIME", "USER", "KIND", "DETAIL"}, rows);
}

// One row per fake-TLS domain: where its profile comes from and the values
// that shape the answers. AGE "-" and source builtin: no measurement yet.
std::string render_mask_profiles(const json::value& v) {
  const json::value* list = at(v, {"profiles"});
  const json::value* probing = at(v, {"probing"});
  std::string head = probing != nullptr && probing->is_bool() && !probing->get_bool()
                         ? "probing off ([mask] probe = false or masking off): every domain is "
                           "answered with the built-in profile\n"
                         : "";
  if (list == nullptr || !list->is_array() || list->get_array().empty())
    return head + "no mask profiles (no fake-TLS domain yet)\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : list->get_array()) {
    auto age = as_int(at(p, {"age_s"}));
    std::string flight;
    if (const json::value* f = at(p, {"flight"}); f != nullptr && f->is_array()) {
      for (const auto& r : f->get_array()) {
        if (!r.is_array() || r.get_array().size() != 2) continue;
        const std::string lo = plain(&r.get_array()[0]), hi = plain(&r.get_array()[1]);
        flight += (flight.empty() ? "" : " ") + (lo == hi ? lo : lo + "-" + hi);
      }
    }
    auto next = as_int(at(p, {"next_probe_at"}));
    rows.push_back({plain(at(p, {"domain"})), plain(at(p, {"target"})), plain(at(p, {"source"})),
                    age && *age >= 0 ? format_duration(static_cast<std::uint64_t>(*age)) : "-",
                    plain(at(p, {"cipher"})), flight.empty() ? "-" : flight,
                    plain(at(p, {"flight_wire_min"})) + "-" + plain(at(p, {"flight_wire_max"})),
                    plain(at(p, {"latency_ms", "median"})),
                    next && *next > 0 ? format_time(*next) : "-",
                    plain(at(p, {"last_error"})).empty() ? "-" : plain(at(p, {"last_error"}))});
  }
  return head + render_table({"DOMAIN", "TARGET", "SOURCE", "AGE", "CIPHER", "FLIGHT", "WIRE",
                              "LATENCY_MS", "NEXT_PROBE", "LAST_ERROR"},
                             rows);
}

// One row per host sharing the store, this one marked; the sweep's age is
// the supervisor's as of its last read of the hosts (every 10 s), so a host
// whose age keeps growing has stopped committing usage.
std::string render_fleet(const json::value& v) {
  std::string head =
      "store " + plain(at(v, {"backend"})) + ", this host " + plain(at(v, {"this_host"})) + "\n";
  if (const std::string e = plain(at(v, {"last_error"})); !e.empty())
    head += "hosts not read (the list below is the last one read): " + e + "\n";
  const json::value* list = at(v, {"hosts"});
  if (list == nullptr || !list->is_array() || list->get_array().empty())
    return head + "no hosts read yet (the first sweep reads them)\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& h : list->get_array()) {
    const json::value* self = at(h, {"this_host"});
    auto first = as_int(at(h, {"first_seen"}));
    auto last = as_int(at(h, {"last_sweep_at"}));
    auto age = as_int(at(h, {"last_sweep_age_s"}));
    const std::string name = plain(at(h, {"name"}));
    rows.push_back({(name.empty() ? "(unnamed)" : name) +
                        (self != nullptr && self->is_bool() && self->get_bool() ? " *" : ""),
                    first ? format_time(*first) : "-", last ? format_time(*last) : "-",
                    age && *age >= 0 ? format_duration(static_cast<std::uint64_t>(*age)) : "-",
                    plain(at(h, {"last_sweep_seq"}))});
  }
  return head + render_table({"HOST", "FIRST_SEEN", "LAST_SWEEP", "SWEEP_AGE", "SWEEPS"}, rows);
}

// One row per [[upstream]]: what it is, who uses it and what the workers
// say of it (a down count above 0 is a failover in progress somewhere).
std::string render_upstreams(const json::value& v) {
  const json::value* list = at(v, {"upstreams"});
  if (list == nullptr || !list->is_array() || list->get_array().empty())
    return "no [[upstream]] configured: every user dials the DCs directly\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& u : list->get_array()) {
    // A direct upstream has no address: its source, if any ("-" when none).
    std::string where = plain(at(u, {"address"}));
    if (where == "-") where = plain(at(u, {"source"}));
    rows.push_back({plain(at(u, {"name"})), plain(at(u, {"type"})), where, plain(at(u, {"auth"})),
                    plain(at(u, {"weight"})), plain(at(u, {"users"})),
                    plain(at(u, {"workers_up"})) + "/" + plain(at(u, {"workers_down"})),
                    plain(at(u, {"connects"})), plain(at(u, {"failures"})),
                    plain(at(u, {"marked_down"})),
                    human_size(static_cast<std::uint64_t>(
                        std::max<std::int64_t>(0, as_int(at(u, {"bytes_up"})).value_or(0)) +
                        std::max<std::int64_t>(0, as_int(at(u, {"bytes_down"})).value_or(0))))});
  }
  return render_table({"NAME", "TYPE", "ADDRESS", "AUTH", "WEIGHT", "USERS", "UP/DOWN", "CONNECTS",
                       "FAILURES", "MARKED_DOWN", "BYTES"},
                      rows);
}

}  // namespace mtw::ctl
