// Private to gate/: Gate's state, shared by gate.cpp and gate_control.cpp.
#pragma once

#include <unordered_map>

#include <deque>
#include <optional>
#include <vector>

#include "base/unique_fd.h"
#include "gate/gate.h"
#include "gate/gate_admission.h"
#include "gate/gate_conn.h"
#include "gate/names.h"
#include "gate/replay_store.h"

namespace spdlog {
class logger;
}

namespace mtw::gate {

const std::shared_ptr<spdlog::logger>& gate_log();

struct Gate::Impl {
  explicit Impl(GateOptions o);

  // gate.cpp
  base::Result<void> adopt_listener(const GateListenerSpec& spec);
  awaitable<void> accept_loop(tcp::acceptor& acc, const ListenerInfo& info);
  awaitable<void> signal_loop();
  awaitable<void> tick_loop();
  void stop(const char* why);
  // The replay file (--replay-fd): new entries out, each second and at exit.
  void save_replay(bool sync);

  // gate_control.cpp
  awaitable<void> control_loop();
  void handle_control(control::Message msg, std::vector<base::UniqueFd> fds);
  void apply_table(const control::GateTable& t, int fd);
  void mask_request(control::Handoff h, base::UniqueFd fd);
  void on_identified(Identified id);
  // Sends a datagram (a handoff, or a GateDirect with no fd) now, or queues
  // it while the control socket is full.
  void send_handoff(proto::Bytes bytes, base::UniqueFd fd);
  awaitable<void> flush_outbox();
  void send_report();
  // Lanes: identified clients go straight to the user's worker while the
  // supervisor's credit allows; what went that way is told in batches.
  void set_lane(const control::GateLane& l, base::UniqueFd fd);
  void set_credit(const control::GateCredit& c);
  bool try_lane(const Identified& id, const control::PeerAddress& peer);
  void flush_direct();
  awaitable<void> direct_timer_wait();

  GateOptions gopts;
  // rt outlives io: destroying io destroys suspended connections, which touch rt.
  Runtime rt;
  // Before io: connections destroyed with io give their admission slots back.
  AdmissionTable admission;
  asio::io_context io{1};
  std::vector<ListenerInfo> listeners;  // parallel to acceptors; connections point in
  std::vector<tcp::acceptor> acceptors;
  std::optional<asio::posix::stream_descriptor> control;
  std::optional<asio::signal_set> signals;
  struct Outgoing {
    proto::Bytes bytes;
    base::UniqueFd fd;
  };
  std::deque<Outgoing> outbox;  // handoffs waiting for room on the control socket
  bool flushing = false;
  struct LaneState {
    base::UniqueFd fd;  // the gate's end of the worker's lane
    std::uint32_t lane = 0;
    std::uint64_t allow_until = 0;
    std::uint64_t sent = 0;  // handed over this lane
  };
  std::unordered_map<std::uint32_t, LaneState> lanes;
  std::vector<control::GateDirectEntry> direct_pending;  // not yet told to the supervisor
  std::optional<asio::steady_timer> direct_timer;
  bool direct_timer_armed = false;
  std::uint64_t report_seq = 0;
  bool stopping = false;
  std::optional<ReplayStore> replay_store;

  // Per-client-IP token buckets for --per-ip-rate (pruned by the tick).
  struct Bucket {
    double tokens = 0;
    Clock::time_point last;
  };
  std::unordered_map<std::string, Bucket> buckets;  // by SourceKeys::source
  bool admit_ip(const std::string& source, Clock::time_point now);
  SourceKeys keys_of(const tcp::socket& sock) const;
};

}  // namespace mtw::gate
