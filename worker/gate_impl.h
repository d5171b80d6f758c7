// Private to worker/: Gate's state, shared by gate.cpp and gate_control.cpp.
#pragma once

#include <unordered_map>

#include <deque>
#include <optional>
#include <vector>

#include "base/unique_fd.h"
#include "worker/asio.h"
#include "worker/control_protocol.h"
#include "worker/gate.h"
#include "worker/runtime.h"

namespace spdlog {
class logger;
}

namespace mtw::worker {

const std::shared_ptr<spdlog::logger>& gate_log();

struct Gate::Impl {
  explicit Impl(GateOptions o);

  // gate.cpp
  base::Result<void> adopt_listener(const GateListenerSpec& spec);
  awaitable<void> accept_loop(tcp::acceptor& acc, const ListenerInfo& info);
  awaitable<void> signal_loop();
  awaitable<void> tick_loop();
  void stop(const char* why);

  // gate_control.cpp
  awaitable<void> control_loop();
  void handle_control(control::Message msg, std::vector<base::UniqueFd> fds);
  void apply_table(const control::GateTable& t, int fd);
  void mask_request(control::Handoff h, base::UniqueFd fd);
  void on_identified(Identified id);
  // Sends a handoff now, or queues it while the control socket is full.
  void send_handoff(proto::Bytes bytes, base::UniqueFd fd);
  awaitable<void> flush_outbox();
  void send_report();

  GateOptions gopts;
  // rt outlives io: destroying io destroys suspended sessions, which touch rt.
  Runtime rt;
  asio::io_context io{1};
  std::vector<ListenerInfo> listeners;  // parallel to acceptors; sessions point in
  std::vector<tcp::acceptor> acceptors;
  std::optional<asio::posix::stream_descriptor> control;
  std::optional<asio::signal_set> signals;
  struct Outgoing {
    proto::Bytes bytes;
    base::UniqueFd fd;
  };
  std::deque<Outgoing> outbox;  // handoffs waiting for room on the control socket
  bool flushing = false;
  std::uint64_t report_seq = 0;
  bool stopping = false;

  // Per-client-IP token buckets for --per-ip-rate (pruned by the tick).
  struct Bucket {
    double tokens = 0;
    Clock::time_point last;
  };
  std::unordered_map<std::string, Bucket> buckets;
  bool admit_ip(const tcp::socket& sock, Clock::time_point now);
};

}  // namespace mtw::worker
