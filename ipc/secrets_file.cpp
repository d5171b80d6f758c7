#include "ipc/secrets_file.h"

#include <cctype>
#include <fstream>
#include <sstream>

namespace mtw::ipc {

using base::Errc;
using base::fail;

std::string format_secrets_file(const std::vector<std::string>& secrets) {
  std::string text;
  for (const auto& s : secrets) {
    text += s;
    text += '\n';
  }
  return text;
}

base::Result<std::vector<proto::Secret>> parse_secrets_text(std::string_view text) {
  std::vector<proto::Secret> out;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) {
      line.remove_prefix(1);
    }
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) {
      line.remove_suffix(1);
    }
    if (line.empty()) continue;
    auto s = proto::parse_secret(line);
    if (!s) {
      return fail(Errc::kBadInput, "line " + std::to_string(line_no) + ": " + s.error().context);
    }
    out.push_back(std::move(*s));
  }
  if (out.empty()) return fail(Errc::kBadInput, "no secrets in file");
  return out;
}

base::Result<std::vector<proto::Secret>> read_secrets_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return base::fail_errno("open secrets file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return base::fail_errno("read secrets file");
  return parse_secrets_text(ss.str());
}

}  // namespace mtw::ipc
