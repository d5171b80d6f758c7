#include "doctor/verdict.h"

#include <array>
#include <boost/json.hpp>
#include <cstdio>

namespace mtw::doctor {

namespace {

std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::array<int, 4> tally(std::span<const Check> checks) {
  std::array<int, 4> n{};
  for (const auto& c : checks) ++n[static_cast<int>(c.verdict)];
  return n;
}

}  // namespace

std::string_view verdict_name(Verdict v) noexcept {
  switch (v) {
    case Verdict::kPass:
      return "pass";
    case Verdict::kWarn:
      return "warn";
    case Verdict::kFail:
      return "fail";
    case Verdict::kSkip:
      return "skip";
  }
  return "skip";
}

int exit_code(std::span<const Check> checks) noexcept {
  int code = kExitPass;
  for (const auto& c : checks) {
    if (c.verdict == Verdict::kFail) return kExitFail;
    if (c.verdict == Verdict::kWarn) code = kExitWarn;
  }
  return code;
}

std::string format_text(std::span<const Check> checks) {
  std::string out;
  for (const auto& c : checks) {
    std::string head(verdict_name(c.verdict));
    for (auto& ch : head) ch = static_cast<char>(ch - 32);  // PASS, WARN, ...
    out += head + "  " + c.id + "  ";
    if (!c.subject.empty()) out += printable(c.subject) + ": ";
    out += printable(c.reason) + "\n";
    if (!c.fix.empty()) out += "      fix: " + printable(c.fix) + "\n";
    for (const auto& [k, v] : c.values) out += "      " + k + ": " + printable(v) + "\n";
  }
  const auto n = tally(checks);
  out += std::to_string(n[0]) + " passed, " + std::to_string(n[1]) + " warnings, " +
         std::to_string(n[2]) + " failed, " + std::to_string(n[3]) + " skipped\n";
  return out;
}

std::string format_json(std::span<const Check> checks) {
  namespace json = boost::json;
  json::array arr;
  for (const auto& c : checks) {
    json::object values;
    for (const auto& [k, v] : c.values) values[k] = v;
    arr.push_back(json::object{{"id", c.id},
                               {"subject", c.subject},
                               {"verdict", verdict_name(c.verdict)},
                               {"reason", c.reason},
                               {"fix", c.fix},
                               {"values", std::move(values)}});
  }
  const auto n = tally(checks);
  json::object root{
      {"checks", std::move(arr)},
      {"summary", json::object{{"pass", n[0]}, {"warn", n[1]}, {"fail", n[2]}, {"skip", n[3]}}},
      {"exit_code", exit_code(checks)}};
  return json::serialize(root) + "\n";
}

}  // namespace mtw::doctor
