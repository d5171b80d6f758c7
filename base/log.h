// Logging set-up: one spdlog logger per module ("proto" never logs; "worker",
// "netns", ...). Fixed phrase + key=value fields; never secrets.
// Every module logger writes through one shared switch, so the destination
// (stderr by default, the journal under systemd) can change at any time and
// applies to loggers already handed out (modules cache them in statics).
// Thread-safe (spdlog's registry and sinks lock).
#pragma once

#include <memory>
#include <string_view>

#include <spdlog/sinks/sink.h>
#include <spdlog/spdlog.h>

namespace mtw::base {

// Configures the line pattern (timestamped, or journald-friendly plain lines
// when `plain` is set) and level ("trace".."off"). Returns false on an unknown
// level, changing nothing.
bool init_logging(std::string_view level, bool plain = false);

// The logger named `module`, created on first use, writing to the current sink.
std::shared_ptr<spdlog::logger> logger(std::string_view module);

// Routes every module logger, existing and future, to `sink` (which gets the
// current pattern as its formatter); nullptr restores the default, stderr.
void use_log_sink(std::shared_ptr<spdlog::sinks::sink> sink);

}  // namespace mtw::base
