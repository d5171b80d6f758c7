// Prometheus text exposition (format 0.0.4) of the service's state: per-user
// series (bytes each way, connections open/total, held/refused, throttled,
// quota used ratio, unique IPs, worker restarts, up), gate health and
// handshake failures by reason, cells, masked connections. Names follow
// Prometheus conventions (mtwarden_ prefix, _bytes_total, _total, base
// units); label values are escaped. Pure: builds text from values.
#pragma once

#include <string>
#include <vector>

#include "api/service.h"

namespace mtw::api {

std::string metrics_text(const ServerStatus& server, const std::vector<UserStatus>& users);

}  // namespace mtw::api
