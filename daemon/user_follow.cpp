// Following the users of a shared store (user_follow.h).
#include "daemon/user_follow.h"

#include <algorithm>

#include "base/log.h"

namespace mtw::daemon {
namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("supervisor");
  return l;
}

}  // namespace

UserFollow::UserFollow(boost::asio::io_context& io, supervisor::StoreConfig config, Hooks hooks)
    : io_(io),
      config_(std::move(config)),
      hooks_(std::move(hooks)),
      retry_timer_(io),
      resync_timer_(io) {}

UserFollow::~UserFollow() { close_socket(); }

void UserFollow::close_socket() {
  if (sock_) {
    boost::system::error_code ec;
    sock_->cancel(ec);
    (void)sock_->release();  // libpq closes it
    sock_.reset();
  }
}

void UserFollow::start() {
  stopped_ = false;
  connect();
  arm_resync();
}

void UserFollow::stop() {
  stopped_ = true;
  ++gen_;
  retry_timer_.cancel();
  resync_timer_.cancel();
  close_socket();
  listener_.reset();
}

void UserFollow::arm_resync() {
  resync_timer_.expires_after(kResyncInterval);
  resync_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    hooks_.resync();
    arm_resync();
  });
}

void UserFollow::connect() {
  if (stopped_) return;
  ++gen_;
  was_subscribed_ = false;
  auto l = supervisor::StoreListener::start(config_);
  if (!l) {
    drop(l.error().to_string());
    return;
  }
  listener_.emplace(std::move(*l));
  watch(supervisor::StoreListener::Wait::kWrite);  // libpq: writable first
}

void UserFollow::watch(supervisor::StoreListener::Wait w) {
  const int fd = listener_->socket();
  if (fd < 0) {
    drop("no socket");
    return;
  }
  // libpq may open a new socket while connecting (another address).
  if (!sock_ || sock_->native_handle() != fd) {
    close_socket();
    boost::system::error_code ec;
    sock_.emplace(io_);
    sock_->assign(fd, ec);
    if (ec) {
      sock_.reset();
      drop("watch socket: " + ec.message());
      return;
    }
  }
  const std::uint64_t gen = gen_;
  sock_->async_wait(w == supervisor::StoreListener::Wait::kRead
                        ? boost::asio::posix::descriptor_base::wait_read
                        : boost::asio::posix::descriptor_base::wait_write,
                    [this, gen](const boost::system::error_code& ec) {
                      if (ec || stopped_ || gen != gen_) return;
                      on_ready(gen);
                    });
}

void UserFollow::on_ready(std::uint64_t gen) {
  auto w = listener_->advance();
  if (!w) {
    drop(w.error().to_string());
    return;
  }
  if (listener_->subscribed() && !was_subscribed_) {
    was_subscribed_ = true;
    backoff_ = kRetryMin;
    if (outage_logged_)
      log()->info("store listener subscribed again");
    else
      log()->info("store listener subscribed, users follow the store");
    outage_logged_ = false;
    // Whatever changed while no one listened: read it all once.
    hooks_.resync();
    if (stopped_ || gen != gen_) return;
  }
  if (auto names = listener_->take_changes(); !names.empty()) {
    hooks_.changed(names);
    if (stopped_ || gen != gen_) return;
  }
  watch(*w);
}

void UserFollow::drop(const std::string& why) {
  ++gen_;
  close_socket();
  listener_.reset();
  if (stopped_) return;
  if (!outage_logged_) {
    log()->warn(
        "store listener down, users change here only at the periodic resync until it "
        "is back retry_ms={} error={}",
        backoff_.count(), why);
    outage_logged_ = true;
  }
  retry_timer_.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, kRetryMax);
  retry_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    connect();
  });
}

}  // namespace mtw::daemon
