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

inline constexpr const char* kDcAddr = "203.0.113.10";    // "the Internet"
inline constexpr const char* kTransitRoot = "192.0.2.1";  // sandbox root's side
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

// Default config for tests: prefix, table and pools are test-specific so a
// failing test can't disturb the next one, and a destroyed cell's host end
// that the kernel has not freed yet never shares an address with the next
// test's cells. An empty pool4 picks a fresh /16 (10.100.0.0/16, 10.101...)
// and each call a fresh IPv6 /48.
CellHostConfig test_config(const std::string& prefix, const std::string& pool4 = "");

// Names of cell-shaped netns entries / veths for `prefix` still present.
std::vector<std::string> leftover_netns(const std::string& prefix);
std::vector<std::string> leftover_links(const std::string& prefix);
// leftover_links after waiting up to `timeout_ms` for it to become empty: a
// destroyed cell's veth is freed by the kernel's asynchronous netns cleanup.
std::vector<std::string> leftover_links_after(const std::string& prefix, int timeout_ms);

}  // namespace mtw::netns::testing
