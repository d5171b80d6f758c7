// Optional start-up lookup of this host's public address ([server]
// public_host_lookup, off by default): one HTTP GET to the configured
// http:// URL, whose answer body must be an IPv4 or IPv6 address (as plain
// "what is my IP" services answer). Used only for the host in client links
// when [server] public_host is empty. Blocking, with a deadline: call it at
// start, before the event loop runs. Thread-safe (own io_context).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "base/error.h"

namespace mtw::api {

// Errors: kBadInput (URL or answer not usable), kTimeout, kSyscall (connect).
[[nodiscard]] base::Result<std::string> lookup_public_address(std::string_view url,
                                                              std::chrono::milliseconds timeout);

}  // namespace mtw::api
