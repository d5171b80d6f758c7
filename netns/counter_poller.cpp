#include "netns/counter_poller.h"

#include <pthread.h>

namespace mtw::netns {

base::Result<std::unique_ptr<CounterPoller>> CounterPoller::start() {
  auto reader = CounterReader::open();
  if (!reader) return tl::unexpected(reader.error());
  std::unique_ptr<CounterPoller> p(new CounterPoller(std::move(*reader)));
  p->thread_ = std::thread([raw = p.get()] { raw->run(); });
  return p;
}

CounterPoller::~CounterPoller() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool CounterPoller::request(Done done) {
  {
    std::lock_guard lk(mu_);
    if (busy_ || stop_) return false;
    busy_ = true;
    pending_ = std::move(done);
  }
  cv_.notify_all();
  return true;
}

bool CounterPoller::busy() const {
  std::lock_guard lk(mu_);
  return busy_;
}

void CounterPoller::run() {
  ::pthread_setname_np(::pthread_self(), "mtw-counters");
  CounterSnapshot snap;
  for (;;) {
    Done done;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stop_ || pending_; });
      if (stop_) return;
      done = std::move(pending_);
      pending_ = nullptr;
    }
    auto r = reader_.snapshot(snap);
    bool stopping;
    {
      std::lock_guard lk(mu_);
      stopping = stop_;
    }
    if (!stopping) {
      if (r)
        done(std::move(snap));
      else
        done(tl::unexpected(r.error()));
    }
    snap = CounterSnapshot{};
    {
      std::lock_guard lk(mu_);
      busy_ = false;
    }
  }
}

}  // namespace mtw::netns
