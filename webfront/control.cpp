#include "webfront/control.h"

#include <fcntl.h>
#include <sys/socket.h>

#include <boost/asio/posix/stream_descriptor.hpp>

#include "base/log.h"
#include "ipc/control_protocol.h"
#include "ipc/control_socket.h"
#include "ipc/gate_table.h"
#include "webfront/beast.h"
#include "webfront/server.h"

namespace mtw::webfront {

using namespace detail;
namespace control = ipc::control;

struct Control::Impl {
  Impl(asio::io_context& io, int fd, std::uint32_t listener_id)
      : desc(io, fd), listener_id(listener_id) {}
  asio::posix::stream_descriptor desc;  // owns the control fd
  std::uint32_t listener_id;
  Hooks hooks;
  std::uint64_t seq = 0;
  std::uint64_t handoffs = 0;
  std::uint64_t failures = 0;
  std::shared_ptr<spdlog::logger> log = base::logger("webfront");

  void handle(control::Message m, std::vector<base::UniqueFd>& fds);
  awaitable<void> read_loop();
};

namespace {

class HandoffBackend final : public StreamBackend {
 public:
  explicit HandoffBackend(Control::Impl& c) : c_(c) {}

  awaitable<base::Result<base::UniqueFd>> open(proto::WebUserId user,
                                               const ClientAddress& peer) override {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) {
      ++c_.failures;
      co_return base::fail_errno("socketpair");
    }
    base::UniqueFd ours(sv[0]), theirs(sv[1]);
    control::GateHandoff gh;
    gh.user = user;
    gh.handoff.listener_id = c_.listener_id;
    gh.handoff.peer.family = peer.family;
    gh.handoff.peer.addr = peer.addr;
    gh.handoff.peer.port = peer.port;
    auto bytes = control::encode(gh);
    if (!bytes) co_return tl::unexpected(bytes.error());
    // The control socket is non-blocking: when the supervisor is that far
    // behind, this stream fails (CLOSE; the app opens another) rather than
    // the whole front waiting.
    if (auto r = control::send_datagram(c_.desc.native_handle(), *bytes, theirs.get()); !r) {
      ++c_.failures;
      co_return tl::unexpected(r.error());
    }
    ++c_.handoffs;
    co_return ours;
  }

 private:
  Control::Impl& c_;
};

}  // namespace

void Control::Impl::handle(control::Message m, std::vector<base::UniqueFd>& fds) {
  if (auto* t = std::get_if<control::GateTable>(&m)) {
    auto table = ipc::read_gate_table(fds.at(0).get());
    if (!table) {
      log->warn("user table rejected generation={} error={}", t->generation,
                table.error().to_string());
      return;
    }
    std::vector<proto::WebUserSecret> users;
    users.reserve(table->size());
    for (auto& u : *table) users.push_back({u.user, u.secret});
    if (hooks.users) hooks.users(users);
    return;
  }
  if (std::holds_alternative<control::ReportRequest>(m)) {
    control::Report r;
    r.seq = ++seq;
    if (hooks.report) r.counters = hooks.report();
    auto bytes = control::encode(r);
    if (bytes) {
      if (auto s = control::send_datagram(desc.native_handle(), *bytes); !s) {
        log->warn("report not sent error={}", s.error().to_string());
      }
    }
    return;
  }
  log->warn("control message ignored type={}", static_cast<int>(control::type_of(m)));
}

awaitable<void> Control::Impl::read_loop() {
  while (true) {
    auto [ec] = co_await desc.async_wait(asio::posix::descriptor_base::wait_read, use_nothrow);
    if (ec) co_return;
    while (true) {
      auto d = control::recv_datagram(desc.native_handle(), true);
      if (!d) {
        if (d.error().sys_errno == EAGAIN) break;
        log->warn("control receive failed error={}", d.error().to_string());
        break;
      }
      if (!*d) {
        log->info("control socket closed");
        if (hooks.closed) hooks.closed();
        co_return;
      }
      auto m = control::decode((*d)->bytes, (*d)->fds.size());
      if (!m) {
        log->warn("control message rejected error={}", m.error().to_string());
        continue;
      }
      handle(std::move(*m), (*d)->fds);
    }
  }
}

Control::Control(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Control::~Control() = default;

base::Result<std::unique_ptr<Control>> Control::adopt(asio::io_context& io, int fd,
                                                      std::uint32_t listener_id) {
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_SEQPACKET) {
    return base::fail(base::Errc::kBadInput, "--control-fd: not an AF_UNIX SOCK_SEQPACKET socket");
  }
  if (::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) != 0 || !base::set_cloexec(fd)) {
    return base::fail_errno("--control-fd fcntl");
  }
  return std::unique_ptr<Control>(new Control(std::make_unique<Impl>(io, fd, listener_id)));
}

void Control::start(Hooks hooks) {
  impl_->hooks = std::move(hooks);
  asio::co_spawn(impl_->desc.get_executor(), impl_->read_loop(), asio::detached);
}

std::unique_ptr<StreamBackend> Control::backend() {
  return std::make_unique<HandoffBackend>(*impl_);
}

void Control::stop() {
  boost::system::error_code ec;
  impl_->desc.cancel(ec);
}

ipc::Counters report_counters(const FrontCounters& c, const Control& control) {
  ipc::Counters out;
  using ipc::Counter;
  out[Counter::kAccepted] = c.connections;
  out[Counter::kActive] = c.sessions_active;
  out[Counter::kClosed] = c.sessions_started - c.sessions_active;
  out[Counter::kHandoffs] = control.handoffs();
  out[Counter::kBytesClientToDc] = c.bytes_up;
  out[Counter::kBytesDcToClient] = c.bytes_down;
  out[Counter::kMasked] = c.decoy_responses;
  out[Counter::kDcConnectFailures] = control.handoff_failures();
  out[Counter::kOverloadClosed] = c.overload_closed;
  return out;
}

std::uint64_t Control::handoffs() const noexcept { return impl_->handoffs; }
std::uint64_t Control::handoff_failures() const noexcept { return impl_->failures; }

}  // namespace mtw::webfront
