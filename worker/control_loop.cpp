// Server: managed mode. Reads control datagrams from the parent (handoffs
// with a client socket, set-limits, reload, report requests, lanes) and
// answers with reports. Malformed datagrams are logged and dropped; the
// parent closing its end starts the drain, or, with --orphan-timeout, an
// orphan's wait for a new controller on the re-attach socket. A lane (from the gate, through
// the parent) carries Handoffs only: anything else on it closes that lane,
// so the less trusted gate can never change limits or secrets.
#include <sys/socket.h>

#include <cerrno>

#include "base/file.h"
#include "base/log.h"
#include "conn/syscall_filter.h"
#include "ipc/control_channel.h"
#include "ipc/control_socket.h"
#include "ipc/reattach_socket.h"
#include "worker/server_impl.h"
#include "worker/session.h"

namespace mtw::worker {
namespace {

using Next = ipc::ControlChannel::Next;
using Stage = ipc::ControlChannel::Stage;

// More lanes than this means a confused parent: refuse the new one.
constexpr std::size_t kMaxLanes = 8;

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("worker");
  return l;
}

}  // namespace

awaitable<void> Server::Impl::control_loop() {
  control.emplace(io, rt.opts.control_fd);
  if (rt.opts.reattach_fd >= 0) {
    // For a socketpair, SO_PEERCRED is whoever made the pair: our parent.
    if (auto cred = ipc::peer_cred(rt.opts.control_fd))
      parent_uid = cred->uid;
    else
      log()->warn("control peer unknown, only root may re-attach error={}",
                  cred.error().to_string());
    reattach.emplace(io, rt.opts.reattach_fd);
    error_code ec;
    reattach->non_blocking(true, ec);
  }
  for (;;) {
    error_code ec;
    control->non_blocking(true, ec);
    ipc::ControlChannel channel(
        *control,
        [this](control::Message msg, std::vector<base::UniqueFd> fds) {
          handle_control(std::move(msg), std::move(fds));
          return Next::kContinue;
        },
        [](Stage stage, const base::Error& e) {
          if (stage == Stage::kReceive) {
            log()->warn("control receive failed error={}", e.to_string());
          } else {
            log()->warn("control message dropped error={}", e.to_string());
          }
          return Next::kContinue;
        });
    if (co_await channel.run() != ipc::ControlChannel::End::kEof) co_return;
    if (orphanage.controller_closed(Clock::now(), rt.draining) == Orphanage::OnClose::kDrain) {
      begin_drain("control socket closed");
      co_return;
    }
    // Orphaned: the connections, lanes, listeners, caps and limits stay as
    // they are; only the controller is gone. Reports have nobody to go to:
    // the totals keep counting and the re-attach report carries them.
    control->close(ec);
    control.reset();
    log()->warn("supervisor gone orphan_timeout_ms={} active={} reattach={}",
                rt.opts.orphan_timeout_ms, rt.counters[Counter::kActive], reattach.has_value());
    auto next = co_await await_controller();
    if (!next) {
      if (!rt.draining) {
        log()->warn("supervisor did not return orphan_timeout_ms={} active={}",
                    rt.opts.orphan_timeout_ms, rt.counters[Counter::kActive]);
        begin_drain("supervisor did not return");
      }
      co_return;
    }
    orphanage.attached();
    control.emplace(io, next->release());
    // Counters since start, not since the old controller: the new one
    // takes its deltas from its own stored baselines.
    send_report();
  }
}

awaitable<std::optional<base::UniqueFd>> Server::Impl::await_controller() {
  auto& timer = orphan_timer.emplace(io);
  timer.expires_at(orphanage.deadline());
  if (!reattach) {
    co_await timer.async_wait(use_nothrow);
    orphan_timer.reset();
    co_return std::nullopt;
  }
  // The deadline ends the wait on the listener. The timer is this round's
  // (a later round makes a new one), and its handler only cancels a wait.
  timer.async_wait([this](error_code ec) {
    if (!ec && reattach) reattach->cancel(ec);  // a closed socket (the drain): nothing to cancel
  });
  std::optional<base::UniqueFd> got;
  while (!rt.draining && reattach && reattach->is_open() && !orphanage.expired(Clock::now())) {
    auto [ec] = co_await reattach->async_wait(asio::posix::descriptor_base::wait_read, use_nothrow);
    // A cancelled wait is the deadline (the loop's test sees it) or, rarely,
    // an earlier round's timer: wait again.
    if (ec == asio::error::operation_aborted) continue;
    if (ec || rt.draining || !reattach || !reattach->is_open()) break;
    auto fd = accept_controller();
    if (!fd) {
      // The listener stays readable while accept fails (EMFILE): pause
      // rather than spin; the controller's connect waits in the backlog.
      asio::steady_timer pause(io, std::chrono::milliseconds(100));
      co_await pause.async_wait(use_nothrow);
    } else if (*fd) {
      got.emplace(std::move(*fd));
      break;
    }
  }
  if (orphan_timer) orphan_timer->cancel();
  co_return got;
}

base::Result<base::UniqueFd> Server::Impl::accept_controller() {
  base::UniqueFd fd(
      ::accept4(reattach->native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  if (!fd) {
    // EAGAIN and the like: the peer gave up before we got to it.
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED || errno == EINTR)
      return base::UniqueFd();
    log()->warn("reattach accept failed errno={}", errno);
    return base::fail_errno("accept4 re-attach socket");
  }
  auto peer = ipc::peer_cred(fd.get());
  if (!peer) {
    log()->warn("reattach refused reason=no_peer_credentials error={}", peer.error().to_string());
    return base::UniqueFd();
  }
  if (!controller_allowed(peer->uid, parent_uid)) {
    log()->warn("reattach refused reason=wrong_uid uid={} pid={}", peer->uid, peer->pid);
    return base::UniqueFd();
  }
  log()->info(
      "supervisor attached uid={} pid={} orphaned_ms={} active={}", peer->uid, peer->pid,
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - orphanage.since())
          .count(),
      rt.counters[Counter::kActive]);
  return fd;
}

void Server::Impl::stop_orphan_wait() {
  error_code ec;
  if (orphan_timer) orphan_timer->cancel();
  if (reattach) reattach->close(ec);
}

void Server::Impl::handle_control(control::Message msg, std::vector<base::UniqueFd> fds) {
  if (auto* h = std::get_if<control::Handoff>(&msg)) {
    handle_handoff(std::move(*h), std::move(fds.front()));
  } else if (auto* l = std::get_if<control::SetLimits>(&msg)) {
    apply_limits(*l);
  } else if (auto* r = std::get_if<control::Reload>(&msg)) {
    apply_reload(*r);
  } else if (std::holds_alternative<control::ReportRequest>(msg)) {
    send_report();
  } else if (auto* l = std::get_if<control::Lane>(&msg)) {
    open_lane(*l, std::move(fds.front()));
  } else if (auto* p = std::get_if<control::MaskProfiles>(&msg)) {
    if (auto n = rt.load_profiles(fds.front().get()); n)
      log()->info("mask profiles applied generation={} profiles={}", p->generation, *n);
    else
      log()->warn("mask profiles rejected generation={} error=\"{}\" kept=previous", p->generation,
                  n.error().to_string());
  } else if (auto* m = std::get_if<control::Middle>(&msg)) {
    apply_middle(*m);
  } else if (auto* e = std::get_if<control::Egress>(&msg)) {
    apply_egress(*e, fds.front().get());
  } else if (auto* st = std::get_if<control::Settings>(&msg)) {
    apply_settings(*st);
  } else {
    log()->warn("control message ignored type={}", static_cast<int>(control::type_of(msg)));
  }
}

void Server::Impl::apply_egress(const control::Egress& e, int fd) {
  auto text = base::read_fd_all(fd, control::kMaxEgressBytes);
  base::Result<proto::EgressSpec> spec =
      text ? proto::parse_egress(*text)
           : base::Result<proto::EgressSpec>(tl::unexpected(text.error()));
  if (!spec) {
    log()->warn("egress rejected generation={} error=\"{}\" kept=previous", e.generation,
                spec.error().to_string());
    return;
  }
  set_egress(std::move(*spec));
  log()->info("egress applied generation={} (new connections; open ones keep their upstream)",
              e.generation);
}

void Server::Impl::open_lane(const control::Lane& l, base::UniqueFd fd) {
  int type = 0;
  socklen_t len = sizeof type;
  if (rt.draining) return;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_SEQPACKET) {
    log()->warn("lane rejected lane={} reason=not_a_seqpacket_socket", l.lane);
    return;
  }
  std::erase_if(lanes, [](const auto& d) { return !d->is_open(); });
  if (lanes.size() >= kMaxLanes) {
    log()->warn("lane rejected lane={} reason=too_many_lanes open={}", l.lane, lanes.size());
    return;
  }
  auto d = std::make_shared<asio::posix::stream_descriptor>(io, fd.release());
  error_code ec;
  d->non_blocking(true, ec);
  lanes.push_back(d);
  log()->debug("lane opened lane={} open={}", l.lane, lanes.size());
  asio::co_spawn(io, lane_loop(std::move(d)), LogExceptions{"lane"});
}

awaitable<void> Server::Impl::lane_loop(std::shared_ptr<asio::posix::stream_descriptor> lane) {
  // A lane has no second chance: anything but a handoff, a datagram that
  // does not decode or a failing socket closes it; so does the gate closing
  // its end (a new lane replaces this one) and the drain.
  ipc::ControlChannel channel(
      *lane,
      [this](control::Message msg, std::vector<base::UniqueFd> fds) {
        auto* h = std::get_if<control::Handoff>(&msg);
        if (!h) {
          log()->warn("lane closed reason=unexpected_message error=\"not a handoff\"");
          return Next::kStop;
        }
        ++rt.counters[Counter::kDirectHandoffs];
        handle_handoff(std::move(*h), std::move(fds.front()), /*counted=*/true);
        return rt.draining ? Next::kStop : Next::kContinue;
      },
      [](Stage stage, const base::Error& e) {
        log()->warn("lane closed reason={} error={}",
                    stage == Stage::kReceive ? "receive_failed" : "unexpected_message",
                    e.to_string());
        return Next::kStop;
      });
  co_await channel.run();
  error_code ec;
  lane->close(ec);
}

void Server::Impl::close_lanes() {
  error_code ec;
  for (auto& l : lanes) l->close(ec);
  lanes.clear();
}

void Server::Impl::handle_handoff(control::Handoff h, base::UniqueFd fd, bool counted) {
  if (!counted) ++rt.counters[Counter::kHandoffs];
  if (rt.draining) return;  // fd closes; the gate's client reconnects elsewhere
  int type = 0;
  socklen_t len = sizeof type;
  sockaddr_storage local{};
  socklen_t local_len = sizeof local;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &local_len) != 0 ||
      (local.ss_family != AF_INET && local.ss_family != AF_INET6 && local.ss_family != AF_UNIX)) {
    log()->warn("handoff rejected reason=not_a_stream_socket");
    return;
  }
  // An AF_UNIX stream socket is one stream of the WEB front (docs/webfront.md),
  // whose other end carries the browser's bytes: the session reads and
  // writes it like a TCP client; only the TCP options do not apply.
  const bool web_stream = local.ss_family == AF_UNIX;
  tcp::socket sock(io);
  error_code ec;
  sock.assign(local.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd.get(), ec);
  if (ec) {
    log()->warn("handoff rejected error={}", ec.message());
    return;
  }
  (void)fd.release();                  // the socket owns it now
  if (!web_stream) tune_socket(sock);  // not from our listener: nothing inherited
  log()->debug("handoff received listener={} bytes={} web_stream={}", h.listener_id, h.data.size(),
               web_stream);
  spawn_session(rt, std::move(sock), std::move(h.data), h.listener_id, h.peer, h.hello_at_ns);
}

void Server::Impl::apply_middle(const control::Middle& m) {
  if (!m.proxy_secret.empty()) {
    auto files = parse_middle_files(m.proxy_secret, m.config_v4, m.config_v6, rt.opts.prefer_ipv6);
    if (!files) {
      // The previous material (if any) stays; without any, tagged clients go direct.
      log()->warn("middle material rejected, keeping the previous error={}",
                  files.error().to_string());
    } else {
      start_middle(std::move(*files));
    }
  }
  rt.middle_routing.default_tag = m.default_tag;
  rt.middle_routing.listener_tags = m.listener_tags;
  rt.middle_routing.fallback = m.fallback;
  std::size_t tagged = 0;
  for (const auto& t : m.listener_tags) tagged += t ? 1 : 0;
  log()->info(
      "middle settings default_tag={} tagged_listeners={} fallback={} material={} "
      "generation={}",
      m.default_tag.has_value(), tagged, m.fallback, middle != nullptr, m.generation);
  if (!middle && (m.default_tag || tagged != 0))
    log()->warn("ad tag set but no middle material yet: clients go direct");
}

void Server::Impl::apply_limits(const control::SetLimits& l) {
  if (l.max_connections != control::kKeep) rt.opts.max_connections = l.max_connections;
  if (l.idle_timeout_ms != control::kKeep) rt.opts.idle_timeout_ms = l.idle_timeout_ms;
  if (l.handshake_timeout_ms != control::kKeep) {
    rt.opts.handshake_timeout_ms = l.handshake_timeout_ms;
  }
  rt.settings = conn_settings(rt.opts);  // what the connections follow
  log()->info("limits set max_connections={} idle_timeout_ms={} handshake_timeout_ms={}",
              rt.opts.max_connections, rt.opts.idle_timeout_ms, rt.opts.handshake_timeout_ms);
}

void Server::Impl::apply_settings(const control::Settings& st) {
  const std::vector<std::string_view> args(st.args.begin(), st.args.end());
  auto next = apply_live_options(rt.opts, args);
  if (!next) {
    log()->warn("settings rejected generation={} error=\"{}\" kept=previous", st.generation,
                next.error().to_string());
    return;
  }
  // Built aside first: a bad DC entry leaves the table in force untouched.
  proto::DcTable dcs;
  for (const auto& spec : next->dc_overrides) {
    if (auto r = dcs.set_from_text(spec); !r) {
      log()->warn("settings rejected generation={} error=\"{}\" kept=previous", st.generation,
                  r.error().to_string());
      return;
    }
  }
  // New connections read these; open ones keep the DC they dialled.
  rt.opts = std::move(*next);
  rt.dcs = std::move(dcs);
  rt.settings = conn_settings(rt.opts);
  log()->info(
      "settings applied generation={} dc_entries={} prefer_ipv6={} fast_mode={} "
      "handshake_timeout_ms={} idle_timeout_ms={} dc_connect_timeout_ms={} mask=\"{}\"",
      st.generation, rt.opts.dc_overrides.size(), rt.opts.prefer_ipv6, rt.opts.fast_mode,
      rt.opts.handshake_timeout_ms, rt.opts.idle_timeout_ms, rt.opts.dc_connect_timeout_ms,
      proto::describe_routes(rt.opts.mask));
}

void Server::Impl::apply_reload(const control::Reload& r) {
  if (r.secrets.empty()) {
    reload_secrets_file();
    return;
  }
  std::vector<proto::Secret> secrets;
  for (const auto& bytes : r.secrets) {
    auto s = proto::parse_secret(proto::to_hex(bytes));
    if (!s) {
      log()->warn("reload rejected, keeping old secrets error={}", s.error().to_string());
      return;
    }
    secrets.push_back(std::move(*s));
  }
  rt.set_secrets(std::move(secrets));
  log()->info("secrets replaced count={}", rt.index->secrets().size());
}

void Server::Impl::send_report() {
  if (!control || !control->is_open()) return;
  rt.counters[Counter::kSeccompDenied] = conn::denied_syscalls();
  sync_middle_counters();
  control::Report rep{++report_seq, rt.counters, {}, rt.clients.report(control::kMaxReportClients)};
  if (rt.egress) {
    const auto& ups = rt.egress->spec().upstreams;
    for (std::size_t i = 0; i < ups.size() && i < control::kMaxReportUpstreams; ++i) {
      const auto& c = rt.egress->counters(i);
      rep.upstreams.push_back({ups[i].name, rt.egress->is_up(i), c.connects, c.failures, c.bytes_up,
                               c.bytes_down, c.marked_down});
    }
  }
  auto bytes = control::encode(rep);
  if (!bytes) return;
  if (auto r = control::send_datagram(control->native_handle(), *bytes); !r) {
    log()->warn("report not sent error={}", r.error().to_string());
  }
}

}  // namespace mtw::worker
