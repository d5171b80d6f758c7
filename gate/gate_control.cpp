// Gate: the control socket. Receives the user table (GateTable), sockets
// to mask (GateMask), lanes and credit (GateLane, GateCredit) and report
// requests; sends identified sockets (GateHandoff), what went over lanes
// (GateDirect) and reports. Malformed datagrams are logged and dropped; the
// supervisor closing its end stops the gate.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <set>

#include "base/log.h"
#include "conn/syscall_filter.h"
#include "gate/gate_impl.h"
#include "ipc/control_channel.h"
#include "ipc/control_socket.h"
#include "ipc/gate_table.h"

namespace mtw::gate {
namespace {

// Handoffs queued while the supervisor is slow; beyond this they are dropped
// (the client's connection closes and it reconnects).
constexpr std::size_t kMaxOutbox = 4096;

// How long a direct handoff may go untold to the supervisor. It bounds how
// late the supervisor learns a client IP or a user's activity, not any
// client's latency; one datagram per window however many connections.
constexpr auto kDirectTellAfter = std::chrono::milliseconds(100);

bool would_block(const base::Error& e) {
  return e.code == base::Errc::kSyscall && (e.sys_errno == EAGAIN || e.sys_errno == EWOULDBLOCK);
}

control::PeerAddress peer_of(int fd) {
  control::PeerAddress p;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return p;
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    p.family = 4;
    std::memcpy(p.addr.data(), &a->sin_addr, 4);
    p.port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    p.family = 6;
    std::memcpy(p.addr.data(), &a->sin6_addr, 16);
    p.port = ntohs(a->sin6_port);
  }
  return p;
}

}  // namespace

awaitable<void> Gate::Impl::control_loop() {
  using Next = ipc::ControlChannel::Next;
  using Stage = ipc::ControlChannel::Stage;
  ipc::ControlChannel channel(
      *control,
      [this](control::Message msg, std::vector<base::UniqueFd> fds) {
        handle_control(std::move(msg), std::move(fds));
        return stopping ? Next::kStop : Next::kContinue;
      },
      [](Stage stage, const base::Error& e) {
        if (stage == Stage::kReceive) {
          gate_log()->warn("control receive failed error={}", e.to_string());
        } else {
          gate_log()->warn("control message dropped error={}", e.to_string());
        }
        return Next::kContinue;
      });
  if (co_await channel.run() == ipc::ControlChannel::End::kEof && !stopping) {
    stop("control socket closed");
  }
}

void Gate::Impl::handle_control(control::Message msg, std::vector<base::UniqueFd> fds) {
  if (auto* t = std::get_if<control::GateTable>(&msg)) {
    apply_table(*t, fds.front().get());
  } else if (auto* m = std::get_if<control::GateMask>(&msg)) {
    mask_request(std::move(m->handoff), std::move(fds.front()));
  } else if (std::holds_alternative<control::ReportRequest>(msg)) {
    send_report();
  } else if (auto* l = std::get_if<control::GateLane>(&msg)) {
    set_lane(*l, std::move(fds.front()));
  } else if (auto* c = std::get_if<control::GateCredit>(&msg)) {
    set_credit(*c);
  } else {
    gate_log()->warn("control message ignored type={}", static_cast<int>(control::type_of(msg)));
  }
}

void Gate::Impl::set_lane(const control::GateLane& gl, base::UniqueFd fd) {
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_SEQPACKET) {
    gate_log()->warn("lane rejected user={} lane={} reason=not_a_seqpacket_socket", gl.user,
                     gl.lane);
    return;
  }
  // Never wait on a worker: a full lane sends the client the other way.
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    gate_log()->warn("lane rejected user={} lane={} reason=fcntl errno={}", gl.user, gl.lane,
                     errno);
    return;
  }
  // An older lane closes here: its worker drains what is queued and sees EOF.
  lanes.insert_or_assign(gl.user, LaneState{std::move(fd), gl.lane, gl.allow_until, 0});
  gate_log()->debug("lane set user={} lane={} allow_until={}", gl.user, gl.lane, gl.allow_until);
}

void Gate::Impl::set_credit(const control::GateCredit& c) {
  auto it = lanes.find(c.user);
  if (it == lanes.end() || it->second.lane != c.lane) return;  // about a lane we no longer have
  if (c.close) {
    lanes.erase(it);
    return;
  }
  it->second.allow_until = c.allow_until;
}

bool Gate::Impl::try_lane(const Identified& id, const control::PeerAddress& peer) {
  auto it = lanes.find(id.user);
  if (it == lanes.end()) return false;
  LaneState& l = it->second;
  if (l.sent >= l.allow_until) return false;  // the supervisor decides this one
  control::Handoff h;
  h.listener_id = id.listener_id;
  h.peer = peer;
  h.hello_at_ns = id.hello_at_ns;
  h.data.assign(id.consumed.begin(), id.consumed.end());
  auto bytes = control::encode(h);
  if (!bytes) return false;
  auto r = control::send_datagram(l.fd.get(), *bytes, id.fd.get());
  if (!r) {
    // Full: this client goes through the supervisor, the lane stays. Gone
    // (the worker exited or closed it): drop it; the supervisor sends a new
    // one when a worker is ready again.
    if (!would_block(r.error())) {
      gate_log()->debug("lane dropped user={} lane={} error={}", id.user, l.lane,
                        r.error().to_string());
      lanes.erase(it);
    }
    return false;
  }
  ++l.sent;
  ++rt.counters[Counter::kDirectHandoffs];
  direct_pending.push_back(control::GateDirectEntry{id.user, l.lane, peer});
  if (direct_pending.size() >= control::kMaxDirectEntries) {
    flush_direct();
  } else if (!direct_timer_armed) {
    direct_timer_armed = true;
    asio::co_spawn(io, direct_timer_wait(), LogExceptions{"direct tell"});
  }
  return true;
}

awaitable<void> Gate::Impl::direct_timer_wait() {
  if (!direct_timer) direct_timer.emplace(io);
  direct_timer->expires_after(kDirectTellAfter);
  co_await direct_timer->async_wait(use_nothrow);
  direct_timer_armed = false;
  if (!stopping) flush_direct();
}

// Through the outbox, so it reaches the supervisor before any GateHandoff
// queued after it: the supervisor counts these before deciding on that one.
void Gate::Impl::flush_direct() {
  if (direct_pending.empty() || stopping) return;
  control::GateDirect d;
  d.entries = std::move(direct_pending);
  direct_pending.clear();
  auto bytes = control::encode(d);
  if (!bytes) {  // unreachable: flushed at kMaxDirectEntries
    gate_log()->error("direct handoffs not encoded error={}", bytes.error().to_string());
    return;
  }
  send_handoff(std::move(*bytes), base::UniqueFd{});
}

void Gate::Impl::apply_table(const control::GateTable& t, int fd) {
  auto users = ipc::read_gate_table(fd);
  if (!users) {
    // The error names the line, never the secret.
    gate_log()->warn("gate table rejected, keeping the old one generation={} error={}",
                     t.generation, users.error().to_string());
    return;
  }
  std::set<proto::UserId> ids;
  for (const auto& u : *users) ids.insert(u.user);
  // A user gone from the table has no worker to reach any more.
  std::erase_if(lanes, [&](const auto& kv) { return !ids.contains(kv.first); });
  const std::size_t secrets = users->size();
  rt.set_users(std::move(*users));
  gate_log()->info("gate table applied generation={} users={} secrets={}", t.generation, ids.size(),
                   secrets);
}

void Gate::Impl::mask_request(control::Handoff h, base::UniqueFd fd) {
  if (stopping) return;
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  int type = 0;
  socklen_t tlen = sizeof type;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_STREAM ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &len) != 0 ||
      (local.ss_family != AF_INET && local.ss_family != AF_INET6)) {
    gate_log()->warn("mask request rejected reason=not_a_tcp_socket");
    return;
  }
  tcp::socket sock(io);
  error_code ec;
  sock.assign(local.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd.get(), ec);
  if (ec) {
    gate_log()->warn("mask request rejected error={}", ec.message());
    return;
  }
  (void)fd.release();  // the socket owns it now
  gate_log()->debug("mask request listener={} bytes={}", h.listener_id, h.data.size());
  conn::spawn(std::make_shared<GateConn>(rt, std::move(sock), std::move(h.data)));
}

void Gate::Impl::on_identified(Identified id) {
  const control::PeerAddress peer = peer_of(id.fd.get());
  if (try_lane(id, peer)) {
    gate_log()->debug("identified user={} listener={} bytes={} path=lane", id.user, id.listener_id,
                      id.consumed.size());
    return;  // our copy of the fd closes here; the worker holds its own
  }
  flush_direct();  // the supervisor must count those before deciding on this one
  control::GateHandoff g;
  g.user = id.user;
  g.handoff.listener_id = id.listener_id;
  g.handoff.peer = peer;
  g.handoff.hello_at_ns = id.hello_at_ns;
  g.handoff.data.assign(id.consumed.begin(), id.consumed.end());
  auto bytes = control::encode(g);
  if (!bytes) {  // unreachable: the handshake buffer fits (static_assert in gate.cpp)
    gate_log()->error("handoff not encoded error={}", bytes.error().to_string());
    return;
  }
  gate_log()->debug("identified user={} listener={} bytes={}", id.user, id.listener_id,
                    id.consumed.size());
  send_handoff(std::move(*bytes), std::move(id.fd));
}

void Gate::Impl::send_handoff(proto::Bytes bytes, base::UniqueFd fd) {
  if (stopping) return;
  if (outbox.empty()) {
    auto r = control::send_datagram(gopts.control_fd, bytes, fd.get());
    if (r) {
      if (fd) ++rt.counters[Counter::kHandoffs];
      return;  // our copy of the fd closes here; the supervisor holds its own
    }
    if (!would_block(r.error())) {
      gate_log()->warn("handoff not sent error={}", r.error().to_string());
      return;
    }
  }
  if (outbox.size() >= kMaxOutbox) {
    gate_log()->warn("handoff dropped reason=control_socket_full queued={}", outbox.size());
    return;
  }
  outbox.push_back(Outgoing{std::move(bytes), std::move(fd)});
  if (!flushing) {
    flushing = true;
    asio::co_spawn(io, flush_outbox(), LogExceptions{"handoff flush"});
  }
}

awaitable<void> Gate::Impl::flush_outbox() {
  while (!outbox.empty() && !stopping) {
    auto [ec] = co_await control->async_wait(asio::posix::descriptor_base::wait_write, use_nothrow);
    if (ec || stopping) break;
    while (!outbox.empty()) {
      auto& o = outbox.front();
      auto r = control::send_datagram(gopts.control_fd, o.bytes, o.fd.get());
      if (!r && would_block(r.error())) break;
      if (r) {
        if (o.fd) ++rt.counters[Counter::kHandoffs];
      } else {
        gate_log()->warn("handoff not sent error={}", r.error().to_string());
      }
      outbox.pop_front();
    }
  }
  flushing = false;
}

void Gate::Impl::send_report() {
  if (stopping) return;
  rt.counters[Counter::kSeccompDenied] = conn::denied_syscalls();
  control::Report rep{++report_seq, rt.counters, {}, {}};
  auto bytes = control::encode(rep);
  if (!bytes) return;
  if (auto r = control::send_datagram(gopts.control_fd, *bytes); !r) {
    gate_log()->warn("report not sent error={}", r.error().to_string());
  }
}

}  // namespace mtw::gate
