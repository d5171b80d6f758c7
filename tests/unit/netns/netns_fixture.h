// Shared pieces of the privileged netns tests: a "DC" namespace standing for
// the Internet (203.0.113.10 behind 192.0.2.2, routed via the sandbox's root
// namespace), TCP/UDP socket helpers, and the cell helper launcher.
#pragma once

#include <netinet/in.h>

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "base/unique_fd.h"
#include "netns/cell.h"
#include "netns/reconcile.h"
#include "tests/unit/netns/sandbox.h"

namespace mtw::netns::testing {

inline constexpr const char* kDcAddr = "203.0.113.10";     // "the Internet"
inline constexpr const char* kTransitRoot = "192.0.2.1";   // sandbox root's side
inline constexpr const char* kRunDir = "/run/netns";

in_addr ip4(const char* text);

// Builds the DC namespace once per process (idempotent); returns its fd.
int dc_netns_fd();

// A listening TCP (or bound UDP) socket on ip:port inside `netns_fd`
// (-1 = the sandbox root namespace).
base::UniqueFd listen_tcp(int netns_fd, const char* ip, int port);
base::UniqueFd bind_udp(int netns_fd, const char* ip, int port);

// Runs "--helper connect ip port timeout_ms" inside `cell`; the exit code.
int connect_from(const Cell& cell, const std::string& ip, int port, int timeout_ms);

// Default config for tests: prefix, table and pool are test-specific so a
// failing test can't disturb the next one.
CellHostConfig test_config(const std::string& prefix, const std::string& pool4 = "10.200.0.0/16");

// Names of cell-shaped netns entries / veths for `prefix` still present.
std::vector<std::string> leftover_netns(const std::string& prefix);
std::vector<std::string> leftover_links(const std::string& prefix);

}  // namespace mtw::netns::testing
