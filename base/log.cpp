#include "base/log.h"

#include <mutex>
#include <string>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace mtw::base {
namespace {
std::mutex g_mu;
spdlog::level::level_enum g_level = spdlog::level::info;
std::string g_pattern = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v";
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
  auto l = spdlog::stderr_color_mt(name);
  l->set_level(g_level);
  l->set_pattern(g_pattern);
  return l;
}

}  // namespace mtw::base
