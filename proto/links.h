// Client links for one secret: tg://proxy and https://t.me/proxy with the
// same query (core.telegram.org/api/links#mtproxy-links). Pure and
// thread-safe. Which hosts and ports a user's links name is decided by
// supervisor/links.h; this file only formats.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/secret.h"

namespace mtw::proto {

// The secret in hex and, for ee secrets, also in base64url (what Telegram's
// own apps print); each form as a tg:// link followed by its t.me twin.
// Host literals with ':' (IPv6) are bracketed.
[[nodiscard]] std::vector<std::string> proxy_links(const Secret& secret, std::string_view host,
                                                   std::uint16_t port);

}  // namespace mtw::proto
