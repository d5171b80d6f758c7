// Logging set-up: one spdlog logger per module ("proto" never logs; "worker",
// "netns", ...). Fixed phrase + key=value fields; never secrets.
// Thread-safe (spdlog's registry is).
#pragma once

#include <memory>
#include <string_view>

#include <spdlog/spdlog.h>

namespace mtw::base {

// Configures the default sink (stderr, or journald-friendly plain lines when
// `plain` is set) and level ("trace".."off"). Returns false on an unknown level.
bool init_logging(std::string_view level, bool plain = false);

// The logger named `module`, created on first use with the default sinks.
std::shared_ptr<spdlog::logger> logger(std::string_view module);

}  // namespace mtw::base
