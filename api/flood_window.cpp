#include "api/flood_window.h"

#include <functional>
#include <string_view>

namespace mtw::api::detail {

bool FloodWindow::record(std::string_view peer, Clock::time_point now) {
  if (!end_) {
    end_ = now + window_;
    return true;
  }
  ++count_;
  if (peers_.size() < kMaxPeers)
    peers_.insert(std::hash<std::string_view>{}(peer));
  else if (!peers_.count(std::hash<std::string_view>{}(peer)))
    capped_ = true;
  return false;
}

std::optional<FloodWindow::Summary> FloodWindow::take() {
  if (count_ == 0) return std::nullopt;
  Summary s{count_, peers_.size(), capped_};
  count_ = 0;
  peers_.clear();
  capped_ = false;
  return s;
}

std::optional<FloodWindow::Summary> FloodWindow::flush(Clock::time_point now) {
  if (!end_ || now < *end_) return std::nullopt;
  auto s = take();
  if (s)
    end_ = now + window_;
  else
    end_.reset();
  return s;
}

std::optional<FloodWindow::Summary> FloodWindow::drain() {
  end_.reset();
  return take();
}

}  // namespace mtw::api::detail
