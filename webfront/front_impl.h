// Private to webfront/: the Front's state, shared by server.cpp (accept,
// TLS, HTTP, routing) and relay.cpp (the carrier sessions).
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "base/log.h"
#include "proto/webproxy_carrier.h"
#include "proto/webproxy_session.h"
#include "webfront/beast.h"
#include "webfront/server.h"

namespace mtw::webfront {

using namespace detail;

std::uint64_t now_ms() noexcept;  // steady clock
std::uint64_t wall_ms() noexcept;

struct Front::Impl {
  Impl(asio::io_context& io, FrontOptions opts, CertStore certs, DecoySite decoy,
       std::unique_ptr<StreamBackend> backend);

  asio::io_context& io;
  FrontOptions opts;
  CertStore certs;
  DecoySite decoy;
  std::unique_ptr<StreamBackend> backend;
  std::shared_ptr<const proto::CapabilityIndex> index;
  proto::WebTokenIssuer tokens;
  // Bootstrap tokens handed out with a bridge page and not yet used: token
  // -> user. A token works once (erased on use) and until it expires.
  struct Pending {
    proto::WebUserId user;
    std::uint64_t expires_ms;
  };
  std::unordered_map<std::string, Pending> pending;
  std::deque<std::pair<std::uint64_t, std::string>> pending_order;  // (expiry, token)
  std::map<proto::WebUserId, std::unique_ptr<proto::WebUserBudget>> budgets;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::optional<asio::steady_timer> cert_timer;
  FrontCounters counters;
  std::uint64_t open_connections = 0;
  // The TCP socket under each open connection, closed by stop() so every
  // coroutine ends and the io_context runs out of work.
  std::unordered_set<tcp::socket*> live;
  bool stopped = false;
  std::shared_ptr<spdlog::logger> log = base::logger("webfront");

  std::string issue_bootstrap(proto::WebUserId user);
  // The user of a bootstrap token, which is then spent; nullopt otherwise.
  std::optional<proto::WebUserId> redeem_bootstrap(std::string_view token);
  proto::WebUserBudget& budget_of(proto::WebUserId user);
  void check_certs();
};

constexpr std::size_t kMaxPendingBootstraps = 65536;

// Runs one carrier session on an accepted WebSocket until it ends.
awaitable<void> run_carrier(Front::Impl& front, std::unique_ptr<ws_stream> ws,
                            proto::WebSession session, proto::WebUserId user, ClientAddress peer);

}  // namespace mtw::webfront
