// Executes a parsed mtwardenctl invocation: sends its request through a
// Transport, prints the response (human or --json) to `out`, diagnostics to
// `err` ("mtwardenctl: ..."), writes QR images, and returns the exit code
// (args.h kExit*). Not thread-safe (uses the caller's streams).
#pragma once

#include <ostream>

#include "ctl/args.h"
#include "ctl/http_client.h"

namespace mtw::ctl {

int run(const Invocation& inv, Transport& transport, std::ostream& out, std::ostream& err);

}  // namespace mtw::ctl
