#include "base/log.h"

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace mtw::base {
namespace {
std::mutex g_mu;
spdlog::level::level_enum g_level = spdlog::level::info;
std::string g_pattern = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v";

// The one sink every module logger holds: a mux whose single target is
// swapped by use_log_sink(). Swapping inside it (under its mutex) is what
// makes the change reach loggers that modules cached in function statics.
std::shared_ptr<spdlog::sinks::dist_sink_mt>& switch_sink() {
  static auto s = std::make_shared<spdlog::sinks::dist_sink_mt>(
      std::vector<spdlog::sink_ptr>{std::make_shared<spdlog::sinks::stderr_color_sink_mt>()});
  return s;
}
}  // namespace

bool init_logging(std::string_view level, bool plain) {
  auto lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off") return false;
  std::lock_guard lock(g_mu);
  g_level = lvl;
  // journald adds its own timestamp; plain mode keeps lines short.
  g_pattern = plain ? "%l [%n] %v" : "%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v";
  spdlog::set_level(g_level);
  spdlog::set_pattern(g_pattern);
  return true;
}

std::shared_ptr<spdlog::logger> logger(std::string_view module) {
  std::lock_guard lock(g_mu);
  std::string name(module);
  if (auto l = spdlog::get(name)) return l;
  auto l = std::make_shared<spdlog::logger>(name, switch_sink());
  l->set_level(g_level);
  l->set_pattern(g_pattern);
  spdlog::register_logger(l);
  return l;
}

void use_log_sink(std::shared_ptr<spdlog::sinks::sink> sink) {
  std::lock_guard lock(g_mu);
  if (!sink) sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  sink->set_formatter(std::make_unique<spdlog::pattern_formatter>(g_pattern));
  switch_sink()->set_sinks({std::move(sink)});
}

}  // namespace mtw::base
