// Private to worker/: Server's state, shared by server.cpp and
// control_loop.cpp.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "base/unique_fd.h"
#include "conn/memory_return.h"
#include "worker/middle.h"
#include "worker/names.h"
#include "worker/orphan.h"
#include "worker/runtime.h"
#include "worker/server.h"

namespace mtw::worker {

// The middle proxies' material, checked: the proxy secret and the config
// of one address family.
struct MiddleFiles {
  proto::Bytes proxy_secret;
  proto::ProxyConfig config;
};
// The IPv4 config when it parses, else the IPv6 one; with `prefer_ipv6`
// (--prefer-ipv6, [telegram] prefer_ipv6) the IPv6 one first, the IPv4 one
// when there is no usable IPv6 one. kBadInput naming the first problem
// (never the secret's bytes).
[[nodiscard]] base::Result<MiddleFiles> parse_middle_files(proto::ByteSpan secret,
                                                           std::string_view config_v4,
                                                           std::string_view config_v6,
                                                           bool prefer_ipv6 = false);

struct Server::Impl {
  explicit Impl(Options o) : rt(std::move(o)) {}
  void finish_drain();

  // server.cpp
  base::Result<void> load_secrets();
  // --ad-tag: reads the proxy secret and proxy-multi.conf, creates `middle`.
  base::Result<void> load_middle();
  // --egress-file: reads the upstreams, creates rt.egress.
  base::Result<void> load_egress();
  // Makes `spec` the egress of new connections (creates rt.egress or
  // replaces its spec) and wakes the health loop.
  void set_egress(proto::EgressSpec spec);
  // Creates `middle`, or gives it new material (open connections keep theirs).
  void start_middle(MiddleFiles files);
  base::Result<void> bind_all();
  void print_links() const;
  awaitable<void> accept_loop(tcp::acceptor& acc);
  awaitable<void> signal_loop();
  awaitable<void> tick_loop();
  void reload_secrets_file();
  void begin_drain(const char* why);
  void write_stats_file();
  // Copies the middle pool's gauges and totals into rt.counters.
  void sync_middle_counters();

  // control_loop.cpp
  awaitable<void> control_loop();
  void handle_control(control::Message msg, std::vector<base::UniqueFd> fds);
  // `counted`: the caller counted it already (a lane's handoffs count as
  // direct_handoffs, the control socket's as handoffs).
  void handle_handoff(control::Handoff h, base::UniqueFd fd, bool counted = false);
  void apply_limits(const control::SetLimits& l);
  void apply_reload(const control::Reload& r);
  void apply_middle(const control::Middle& m);
  // Control type 15: the egress in memfd `fd` replaces rt.egress's spec;
  // a bad one is logged and the previous stays.
  void apply_egress(const control::Egress& e, int fd);
  // A settings message: the live flags (options.h, apply_live_options) for
  // new connections; a bad set is logged and the old one kept.
  void apply_settings(const control::Settings& st);
  void send_report();
  // While orphaned: waits for a controller on the re-attach socket (the
  // first peer controller_allowed() admits) until the orphan deadline;
  // nullopt when it passed, or a drain began, or there is no such socket.
  awaitable<std::optional<base::UniqueFd>> await_controller();
  // One accept() on the re-attach socket, judged by SO_PEERCRED: the new
  // controller's socket, or an empty fd (nothing pending, or refused and
  // logged); kSyscall when accept itself fails (EMFILE, logged).
  [[nodiscard]] base::Result<base::UniqueFd> accept_controller();
  // Ends an orphan's wait (a drain began): cancels its timer and closes the
  // re-attach socket.
  void stop_orphan_wait();
  void open_lane(const control::Lane& l, base::UniqueFd fd);
  awaitable<void> lane_loop(std::shared_ptr<asio::posix::stream_descriptor> lane);
  void close_lanes();

  // rt outlives io: destroying io destroys suspended sessions, which touch rt.
  Runtime rt;
  // Middle-proxy mode only. Declared before io (destroyed after it): sessions
  // destroyed with io detach from its connections. close_all() in
  // finish_drain ends the connections' coroutines so io.run() can return.
  std::unique_ptr<MiddlePool> middle;
  asio::io_context io{1};
  std::vector<tcp::acceptor> acceptors;
  std::vector<proto::Secret> flag_secrets;  // --secret values; the file adds to them
  // The current controller; empty while orphaned (it closed its end).
  std::optional<asio::posix::stream_descriptor> control;
  // --orphan-timeout: whether the worker is orphaned and until when.
  Orphanage orphanage{rt.opts.orphan_timeout_ms};
  // --reattach-fd: the listener a new controller connects to.
  std::optional<asio::posix::stream_descriptor> reattach;
  std::optional<asio::steady_timer> orphan_timer;  // the orphan deadline, while orphaned
  // Besides root, who may re-attach: the uid of the first control socket's
  // peer (controller_allowed).
  uid_t parent_uid = 0;
  // Lanes from the gate (Handoffs only); each lives until its peer closes.
  std::vector<std::shared_ptr<asio::posix::stream_descriptor>> lanes;
  std::optional<asio::signal_set> signals;
  std::uint64_t report_seq = 0;
  Clock::time_point drain_deadline;
  asio::steady_timer* tick_timer = nullptr;        // while tick_loop runs
  std::optional<asio::steady_timer> health_timer;  // egress health checks, when on
  // Returns a burst's memory to the kernel once connections fall (the tick).
  conn::MemoryReturn memory;
  bool tick_woken = false;  // the timer was cancelled to wake it, not to stop it
  Clock::time_point next_stats_file;
  Clock::time_point next_summary;
};

}  // namespace mtw::worker
