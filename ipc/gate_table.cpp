#include "ipc/gate_table.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>

namespace mtw::ipc {
namespace {

using base::Errc;
using base::fail;

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

base::Result<std::uint32_t> parse_u32(std::string_view v) {
  std::uint32_t out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size()) {
    return fail(Errc::kBadInput, "not a non-negative integer");
  }
  return out;
}

}  // namespace

void append_gate_table_line(std::string& table, proto::UserId user, std::string_view secret) {
  table += std::to_string(user);
  table += ' ';
  table += secret;
  table += '\n';
}

base::Result<std::vector<proto::UserSecret>> parse_gate_table(std::string_view text) {
  std::vector<proto::UserSecret> out;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    auto nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty() || line.front() == '#') continue;
    auto where = "line " + std::to_string(line_no) + ": ";
    auto sp = std::find_if(line.begin(), line.end(),
                           [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
    if (sp == line.end()) return fail(Errc::kBadInput, where + "want USER_ID SECRET");
    auto user = parse_u32(line.substr(0, sp - line.begin()));
    if (!user) return fail(Errc::kBadInput, where + "bad user id");
    std::string_view secret_text = trim(line.substr(sp - line.begin()));
    if (std::any_of(secret_text.begin(), secret_text.end(),
                    [](char c) { return std::isspace(static_cast<unsigned char>(c)); })) {
      return fail(Errc::kBadInput, where + "trailing fields after the secret");
    }
    auto secret = proto::parse_secret(secret_text);
    if (!secret) return fail(Errc::kBadInput, where + secret.error().context);
    out.push_back(proto::UserSecret{*user, std::move(*secret)});
  }
  return out;
}

base::Result<std::vector<proto::UserSecret>> read_gate_table(int fd) {
  std::string text;
  std::size_t used = 0;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {  // a memfd: its size is known
    if (static_cast<std::uint64_t>(st.st_size) > kMaxGateTableBytes) {
      return fail(Errc::kTooLarge, "gate table over 64 MiB");
    }
    text.reserve(static_cast<std::size_t>(st.st_size) + 64 * 1024);
  }
  for (;;) {
    if (text.size() - used < 64 * 1024) text.resize(used + 256 * 1024);
    ssize_t n = ::pread(fd, text.data() + used, text.size() - used, static_cast<off_t>(used));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return base::fail_errno("read gate table");
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
    if (used > kMaxGateTableBytes) return fail(Errc::kTooLarge, "gate table over 64 MiB");
  }
  text.resize(used);
  return parse_gate_table(text);
}

}  // namespace mtw::ipc
