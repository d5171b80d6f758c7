// Gate: the control socket. Receives the user table (GateTable), sockets
// to mask (GateMask) and report requests; sends identified sockets
// (GateHandoff) and reports. Malformed datagrams are logged and dropped; the
// supervisor closing its end stops the gate.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <set>

#include "base/log.h"
#include "worker/control_socket.h"
#include "worker/gate_impl.h"
#include "worker/session.h"

namespace mtw::worker {
namespace {

// Handoffs queued while the supervisor is slow; beyond this they are dropped
// (the client's connection closes and it reconnects).
constexpr std::size_t kMaxOutbox = 4096;

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
  const int fd = gopts.control_fd;
  while (!stopping) {
    auto [wec] = co_await control->async_wait(asio::posix::descriptor_base::wait_read, use_nothrow);
    if (wec || stopping) co_return;
    for (;;) {
      auto got = control::recv_datagram(fd, /*dont_wait=*/true);
      if (!got) {
        if (would_block(got.error())) break;
        gate_log()->warn("control receive failed error={}", got.error().to_string());
        break;
      }
      if (!*got) {
        stop("control socket closed");
        co_return;
      }
      auto msg = control::decode((*got)->bytes, (*got)->fds.size());
      if (!msg) {
        gate_log()->warn("control message dropped error={}", msg.error().to_string());
        continue;
      }
      handle_control(std::move(*msg), std::move((*got)->fds));
      if (stopping) co_return;
    }
  }
}

void Gate::Impl::handle_control(control::Message msg, std::vector<base::UniqueFd> fds) {
  if (auto* t = std::get_if<control::GateTable>(&msg)) {
    apply_table(*t, fds.front().get());
  } else if (auto* m = std::get_if<control::GateMask>(&msg)) {
    mask_request(std::move(m->handoff), std::move(fds.front()));
  } else if (std::holds_alternative<control::ReportRequest>(msg)) {
    send_report();
  } else {
    gate_log()->warn("control message ignored type={}", static_cast<int>(control::type_of(msg)));
  }
}

void Gate::Impl::apply_table(const control::GateTable& t, int fd) {
  auto users = read_gate_table(fd);
  if (!users) {
    // The error names the line, never the secret.
    gate_log()->warn("gate table rejected, keeping the old one generation={} error={}",
                     t.generation, users.error().to_string());
    return;
  }
  std::set<proto::UserId> ids;
  for (const auto& u : *users) ids.insert(u.user);
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
  spawn_session(rt, std::move(sock), std::move(h.data), nullptr, /*mask_only=*/true);
}

void Gate::Impl::on_identified(Identified id) {
  control::GateHandoff g;
  g.user = id.user;
  g.handoff.listener_id = id.listener_id;
  g.handoff.peer = peer_of(id.fd.get());
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
      ++rt.counters[Counter::kHandoffs];
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
        ++rt.counters[Counter::kHandoffs];
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
  control::Report rep{++report_seq, rt.counters};
  auto bytes = control::encode(rep);
  if (!bytes) return;
  if (auto r = control::send_datagram(gopts.control_fd, *bytes); !r) {
    gate_log()->warn("report not sent error={}", r.error().to_string());
  }
}

}  // namespace mtw::worker
