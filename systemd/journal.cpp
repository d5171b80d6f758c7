#include "systemd/journal.h"

#include <sys/stat.h>
#include <sys/uio.h>

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <mutex>

#include <spdlog/sinks/base_sink.h>
// Without this, sd_journal_sendv() is a macro adding CODE_FILE=/CODE_LINE=
// of this file: the sink's own location, the same for every entry.
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

namespace mtw::systemd {
namespace {

constexpr std::size_t kMaxFields = 32;
// Journal field names are at most 64 characters; ours get "MTW_" in front.
constexpr std::size_t kMaxKey = 60;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// "host-if" -> "HOST_IF"; empty when `key` is not a field key.
std::string normal_key(std::string_view key) {
  if (key.empty() || !std::isalpha(static_cast<unsigned char>(key[0]))) return {};
  std::string out;
  for (char c : key) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) && u < 0x80)
      out += static_cast<char>(std::toupper(u));
    else if (c == '_' || c == '-' || c == '.')
      out += '_';
    else
      return {};
  }
  if (out.size() > kMaxKey) out.resize(kMaxKey);
  return out;
}

std::string journal_name(const std::string& key) {
  if (key == "USER") return "USER";
  if (key == "CELL" || key == "HOST_IF" || key == "NETNS") return "CELL";
  if (key == "EVENT" || key == "KIND") return "EVENT";
  return "MTW_" + key;
}

// Reads a "double quoted" value starting after the opening quote at `i`;
// leaves `i` past the closing quote (or at the end when it is missing).
std::string quoted_value(std::string_view m, std::size_t& i) {
  std::string v;
  while (i < m.size()) {
    const char c = m[i++];
    if (c == '"') return v;
    if (c == '\\' && i < m.size() && (m[i] == '"' || m[i] == '\\')) {
      v += m[i++];
      continue;
    }
    v += c;
  }
  return v;
}

int syslog_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return 7;
    case spdlog::level::warn:
      return 4;
    case spdlog::level::err:
      return 3;
    case spdlog::level::critical:
      return 2;
    default:
      return 6;
  }
}

class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit JournalSink(std::string identifier) : identifier_(std::move(identifier)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    const std::string_view module(msg.logger_name.data(), msg.logger_name.size());
    const auto entry = journal_entry(identifier_, module, msg.level, payload);
    std::vector<iovec> iov;
    iov.reserve(entry.size());
    for (const auto& f : entry) {
      iov.push_back(iovec{const_cast<char*>(f.data()), f.size()});
    }
    // Nowhere to report a failure: the journal is where it would go.
    (void)::sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
  }
  void flush_() override {}

 private:
  std::string identifier_;
};

}  // namespace

bool stderr_is_journal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (env == nullptr) return false;
  const std::string_view s(env);
  const auto colon = s.find(':');
  if (colon == std::string_view::npos) return false;
  unsigned long long dev = 0, ino = 0;
  const auto* end = s.data() + s.size();
  auto r1 = std::from_chars(s.data(), s.data() + colon, dev);
  auto r2 = std::from_chars(s.data() + colon + 1, end, ino);
  if (r1.ec != std::errc() || r1.ptr != s.data() + colon || r2.ec != std::errc() || r2.ptr != end ||
      colon == 0 || colon + 1 == s.size()) {
    return false;
  }
  struct stat st {};
  if (::fstat(2, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

std::vector<std::pair<std::string, std::string>> journal_fields(std::string_view m) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t i = 0;
  while (i < m.size() && out.size() < kMaxFields) {
    while (i < m.size() && is_space(m[i])) ++i;
    const std::size_t start = i;
    while (i < m.size() && !is_space(m[i]) && m[i] != '=' && m[i] != '"') ++i;
    if (i >= m.size()) break;
    if (m[i] != '=') {
      // A word without a key: skip it whole (a quoted phrase included, so
      // key=value text inside quotes is never lifted).
      if (m[i] == '"') {
        ++i;
        (void)quoted_value(m, i);
      }
      while (i < m.size() && !is_space(m[i])) ++i;
      continue;
    }
    const std::string key = normal_key(m.substr(start, i - start));
    ++i;  // '='
    std::string value;
    if (i < m.size() && m[i] == '"') {
      ++i;
      value = quoted_value(m, i);
    } else {
      const std::size_t vs = i;
      while (i < m.size() && !is_space(m[i])) ++i;
      value = std::string(m.substr(vs, i - vs));
    }
    if (!key.empty()) out.emplace_back(journal_name(key), std::move(value));
  }
  return out;
}

std::vector<std::string> journal_entry(std::string_view identifier, std::string_view module,
                                       spdlog::level::level_enum level, std::string_view message) {
  std::vector<std::string> e;
  e.reserve(6);
  e.push_back("MESSAGE=" + std::string(message));
  e.push_back("PRIORITY=" + std::to_string(syslog_priority(level)));
  e.push_back("SYSLOG_IDENTIFIER=" + std::string(identifier));
  if (!module.empty()) e.push_back("MTW_MODULE=" + std::string(module));
  for (auto& [k, v] : journal_fields(message)) e.push_back(k + "=" + v);
  return e;
}

std::shared_ptr<spdlog::sinks::sink> make_journal_sink(std::string identifier) {
  return std::make_shared<JournalSink>(std::move(identifier));
}

}  // namespace mtw::systemd
