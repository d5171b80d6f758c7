#include "doctor/answers.h"

#include <algorithm>
#include <cstdio>
#include <string_view>

#include "proto/tls_profile.h"

namespace mtw::doctor {

namespace {

struct Record {
  unsigned type = 0;
  std::size_t len = 0;
  proto::ByteSpan body;
};

bool looks_tls(const proto::Bytes& d) {
  return d.size() >= 5 && std::to_integer<unsigned>(d[0]) >= 0x14 &&
         std::to_integer<unsigned>(d[0]) <= 0x17 && std::to_integer<unsigned>(d[1]) == 0x03;
}

bool looks_http(const proto::Bytes& d) {
  static constexpr std::string_view kHttp = "HTTP/";
  if (d.size() < kHttp.size()) return false;
  return std::equal(kHttp.begin(), kHttp.end(), d.begin(),
                    [](char a, std::byte b) { return static_cast<char>(b) == a; });
}

// Whole records; a partial tail (the probe stopped listening) is left out.
std::vector<Record> records(const proto::Bytes& d) {
  std::vector<Record> out;
  std::size_t at = 0;
  while (at + 5 <= d.size()) {
    const std::size_t len =
        (std::to_integer<std::size_t>(d[at + 3]) << 8) | std::to_integer<std::size_t>(d[at + 4]);
    if (at + 5 + len > d.size()) break;
    out.push_back({std::to_integer<unsigned>(d[at]), len, proto::ByteSpan(d.data() + at + 5, len)});
    at += 5 + len;
  }
  return out;
}

std::string record_list(const std::vector<Record>& rs) {
  std::string out;
  for (const auto& r : rs) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%02x:%zu", out.empty() ? "" : " ", r.type, r.len);
    out += buf;
  }
  return out;
}

// The HTTP answer without its Date value (it names the second it was sent).
std::string canonical_http(const proto::Bytes& d) {
  std::string s(reinterpret_cast<const char*>(d.data()), d.size());
  const std::string_view key = "\r\nDate: ";
  for (std::size_t at = s.find(key); at != std::string::npos; at = s.find(key, at + 1)) {
    const std::size_t end = s.find("\r\n", at + key.size());
    if (end == std::string::npos) break;
    s.replace(at + key.size(), end - at - key.size(), "-");
  }
  return s;
}

std::string first_line(const proto::Bytes& d) {
  std::string s;
  for (std::byte b : d) {
    const char c = static_cast<char>(b);
    if (c == '\r' || c == '\n' || s.size() >= 60) break;
    s += (c >= 0x20 && c < 0x7f) ? c : '.';
  }
  return s;
}

std::string hex_head(const proto::Bytes& d) {
  std::string out;
  for (std::size_t i = 0; i < d.size() && i < 8; ++i) {
    char buf[4];
    std::snprintf(buf, sizeof buf, "%02x", std::to_integer<unsigned>(d[i]));
    out += buf;
  }
  return out + (d.size() > 8 ? "..." : "");
}

void compare_tls(const Answer& ours, const Answer& mask, std::vector<std::string>& diff) {
  const auto a = records(ours.data), b = records(mask.data);
  bool same = a.size() == b.size();
  for (std::size_t i = 0; same && i < a.size(); ++i) {
    if (a[i].type != b[i].type) same = false;
    const std::size_t d = a[i].len > b[i].len ? a[i].len - b[i].len : b[i].len - a[i].len;
    if (a[i].type == 0x17 ? d > kEncryptedSlack : d != 0) same = false;
    // Alerts say why; they must be the same alert.
    if (a[i].type == 0x15 &&
        !std::equal(a[i].body.begin(), a[i].body.end(), b[i].body.begin(), b[i].body.end()))
      same = false;
  }
  if (!same) {
    diff.push_back("records " + record_list(a) + " vs the mask's " + record_list(b));
    return;
  }
  // Same record structure: a ServerHello must also agree in its fields.
  auto fa = proto::parse_server_flight(ours.data);
  auto fb = proto::parse_server_flight(mask.data);
  if (fa.has_value() != fb.has_value()) {
    diff.push_back("one answer is a TLS 1.3 ServerHello, the other not");
    return;
  }
  if (!fa) return;
  char buf[96];
  if (fa->cipher_suite != fb->cipher_suite || fa->legacy_version != fb->legacy_version) {
    std::snprintf(buf, sizeof buf, "ServerHello version/cipher %04x/%04x vs the mask's %04x/%04x",
                  fa->legacy_version, fa->cipher_suite, fb->legacy_version, fb->cipher_suite);
    diff.push_back(buf);
  }
  std::vector<std::uint16_t> ea, eb;
  for (const auto& e : fa->extensions) ea.push_back(e.type);
  for (const auto& e : fb->extensions) eb.push_back(e.type);
  if (ea != eb) diff.push_back("ServerHello extensions differ in type or order");
  if (fa->key_share_group != fb->key_share_group) diff.push_back("key_share group differs");
}

}  // namespace

std::string_view end_name(EndKind e) noexcept {
  switch (e) {
    case EndKind::kFin:
      return "fin";
    case EndKind::kRst:
      return "rst";
    case EndKind::kOpen:
      return "open";
    case EndKind::kNoConnect:
      return "no connection";
  }
  return "open";
}

std::string describe_answer(const Answer& a) {
  if (a.end == EndKind::kNoConnect) return "no connection (" + a.error + ")";
  std::string what;
  if (a.data.empty()) {
    what = "nothing";
  } else if (looks_tls(a.data)) {
    what = "TLS " + record_list(records(a.data));
  } else if (looks_http(a.data)) {
    what = first_line(a.data) + " (" + std::to_string(a.data.size()) + " bytes)";
  } else {
    what = std::to_string(a.data.size()) + " bytes " + hex_head(a.data);
  }
  return what + ", " + std::string(end_name(a.end));
}

std::vector<std::string> compare_answers(const Answer& ours, const Answer& mask) {
  std::vector<std::string> diff;
  if (ours.end != mask.end)
    diff.push_back("ended with " + std::string(end_name(ours.end)) + ", the mask with " +
                   std::string(end_name(mask.end)));
  if (ours.data.empty() != mask.data.empty()) {
    diff.push_back("answered " + describe_answer(ours) + ", the mask " + describe_answer(mask));
    return diff;
  }
  if (ours.data.empty()) return diff;
  if (looks_tls(ours.data) && looks_tls(mask.data)) {
    compare_tls(ours, mask, diff);
  } else if (looks_http(ours.data) && looks_http(mask.data)) {
    if (canonical_http(ours.data) != canonical_http(mask.data))
      diff.push_back("HTTP answer \"" + first_line(ours.data) + "\" (" +
                     std::to_string(ours.data.size()) + " bytes) vs the mask's \"" +
                     first_line(mask.data) + "\" (" + std::to_string(mask.data.size()) + " bytes)");
  } else if (ours.data != mask.data) {
    diff.push_back("answered " + describe_answer(ours) + ", the mask " + describe_answer(mask));
  }
  return diff;
}

Check judge_self_probe(const std::string& listener, const std::string& mask,
                       std::span<const ProbeOutcome> outcomes) {
  Check c;
  c.id = "self_probe";
  c.subject = listener;
  c.values.emplace_back("mask", mask);
  for (const auto& o : outcomes) {
    if (o.ours.end == EndKind::kNoConnect) {
      c.verdict = Verdict::kSkip;
      c.reason = "cannot connect to our listener " + listener + ": " + o.ours.error;
      return c;
    }
    if (o.mask.end == EndKind::kNoConnect) {
      c.verdict = Verdict::kSkip;
      c.reason = "cannot connect to the mask " + mask + ": " + o.mask.error;
      return c;
    }
  }
  std::size_t differ = 0;
  std::vector<std::string> names;
  for (const auto& o : outcomes) {
    names.push_back(o.probe);
    const auto d = compare_answers(o.ours, o.mask);
    c.values.emplace_back(
        o.probe, d.empty()
                     ? "same: " + describe_answer(o.ours)
                     : "DIFFERENT: " + d.front() +
                           (d.size() > 1 ? " (+" + std::to_string(d.size() - 1) + " more)" : ""));
    if (!d.empty()) ++differ;
  }
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  if (differ == 0) {
    c.verdict = Verdict::kPass;
    c.reason = "indistinguishable: " + list + " got the same answers from " + listener +
               " as from the mask " + mask;
    return c;
  }
  c.verdict = Verdict::kFail;
  c.reason = std::to_string(differ) + " of " + std::to_string(outcomes.size()) +
             " probes answered differently by " + listener + " than by the mask " + mask;
  c.fix =
      "masked connections must reach the same server a prober reaches: check the listener's "
      "mask, [mask] address, [mask.domains] and unknown_sni (docs/masking.md)";
  return c;
}

}  // namespace mtw::doctor
