#include "supervisor/child_log.h"

#include <algorithm>
#include <array>

namespace mtw::supervisor {

std::string escape_log_line(std::string_view raw) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() + 8);
  for (char ch : raw) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += ch;
    }
  }
  return out;
}

std::string_view child_line_level(std::string_view raw) {
  static constexpr std::array<std::string_view, 6> kLevels = {"trace",   "debug", "info",
                                                              "warning", "error", "critical"};
  const auto sp = raw.find(' ');
  if (sp == std::string_view::npos) return "info";
  std::string_view word = raw.substr(sp + 1);
  word = word.substr(0, word.find(' '));
  for (auto l : kLevels)
    if (word == l) return l;
  return "info";
}

void TokenBucket::refill(Clock::time_point now) {
  if (!started_) {
    started_ = true;
    last_ = now;
    return;
  }
  if (now <= last_) return;
  tokens_ = std::min(burst_, tokens_ + std::chrono::duration<double>(now - last_).count() * rate_);
  last_ = now;
}

bool TokenBucket::take(double n, Clock::time_point now) {
  refill(now);
  if (tokens_ < n) return false;
  tokens_ -= n;
  return true;
}

void TokenBucket::charge(double n, Clock::time_point now) {
  refill(now);
  tokens_ -= n;
}

TokenBucket::Clock::duration TokenBucket::wait_for(double n, Clock::time_point now) {
  refill(now);
  if (tokens_ >= n || rate_ <= 0) return Clock::duration::zero();
  return std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>((n - tokens_) / rate_));
}

void ChildLogFilter::end_line(Clock::time_point now, const Emit& emit) {
  if (lines_.take(1, now))
    emit(line_, cut_);
  else
    ++dropped_;
  line_.clear();
  cut_ = 0;
  in_line_ = false;
}

void ChildLogFilter::feed(std::string_view bytes, Clock::time_point now, const Emit& emit) {
  while (!bytes.empty()) {
    const auto nl = bytes.find('\n');
    const std::string_view part = bytes.substr(0, nl);
    in_line_ = true;
    const std::size_t room = limits_.max_line_bytes - line_.size();
    line_.append(part.substr(0, room));
    cut_ += part.size() - std::min(room, part.size());
    if (nl == std::string_view::npos) return;
    end_line(now, emit);
    bytes.remove_prefix(nl + 1);
  }
}

void ChildLogFilter::finish(Clock::time_point now, const Emit& emit) {
  if (in_line_) end_line(now, emit);
}

}  // namespace mtw::supervisor
