#include "gate/gate_conn.h"

#include "base/log.h"

namespace mtw::gate {
namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("gate");
  return l;
}

}  // namespace

GateConn::GateConn(Runtime& rt, tcp::socket client, const ListenerInfo& listener,
                   AdmissionTicket ticket)
    : Connection(rt, std::move(client), {}),
      rt_(rt),
      listener_(&listener),
      ticket_(std::move(ticket)),
      in_handshake_(true) {
  ++rt_.counters[Counter::kAccepted];
  ++rt_.handshaking;
  unproven_it_ = rt_.unproven.insert(rt_.unproven.end(), this);
  in_unproven_ = true;
}

GateConn::GateConn(Runtime& rt, tcp::socket client, proto::Bytes initial)
    : Connection(rt, std::move(client), std::move(initial)),
      rt_(rt),
      listener_(nullptr),
      in_handshake_(false) {
  ++rt_.counters[Counter::kMaskRequests];
}

GateConn::~GateConn() { on_handshake_end(); }

void GateConn::on_plausible_start() noexcept {
  if (!in_unproven_) return;
  rt_.unproven.erase(unproven_it_);
  in_unproven_ = false;
}

void GateConn::on_handshake_end() noexcept {
  if (in_handshake_) --rt_.handshaking;
  in_handshake_ = false;
  on_plausible_start();  // leaves the unproven list
  ticket_.release();
}

void GateConn::evict() noexcept {
  on_handshake_end();
  close();
}

awaitable<void> GateConn::serve(conn::BufferLease& buf, std::size_t filled) {
  if (listener_ == nullptr) {
    co_await mask(buf, filled, false);
    co_return;
  }
  auto out = co_await read_handshake(buf, filled, listener_->allowed);
  switch (out.end) {
    case conn::HandshakeOutcome::End::kDrop:
      break;
    case conn::HandshakeOutcome::End::kMask:
      co_await mask(buf, out.filled, out.client_eof);
      break;
    case conn::HandshakeOutcome::End::kIdentified:
      hand_off(out.id.user, buf, out.filled);
      break;
  }
}

void GateConn::hand_off(proto::UserId user, conn::BufferLease& buf, std::size_t filled) {
  ++rt_.counters[Counter::kHandshakeOk];
  phase_ = Phase::kClosed;
  error_code ec;
  const int fd = client_.release(ec);  // no operation is pending: nothing to abort
  if (ec) {
    log()->warn("hand-off failed id={} error={}", id_, ec.message());
    close();
    return;
  }
  rt_.on_identified(
      Identified{user, listener_->id, base::UniqueFd(fd), {buf.data(), filled}, hello_at_ns()});
}

}  // namespace mtw::gate
