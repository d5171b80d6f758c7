// Server: the worker process — listeners (standalone), the control socket
// (managed mode), signals, the 250 ms housekeeping tick (deadlines, stats
// file, periodic summary, drain) — around one io_context on the calling
// thread. Keeps Asio out of its header (pimpl). Not thread-safe.
#pragma once

#include <memory>

#include "base/error.h"
#include "worker/options.h"

namespace mtw::worker {

class Server {
 public:
  explicit Server(Options opts);
  ~Server();
  Server(const Server&) = delete;

  // Loads secrets (flags + --secrets-file), binds every --bind, prints
  // "listening ADDR:PORT" and the proxy links on stdout. Errors: a bind,
  // the secrets file or the DC table failed (the message says which).
  [[nodiscard]] base::Result<void> start();
  // Serves until SIGTERM/SIGINT (or the parent closing the control socket)
  // and the drain finished. Returns the process exit status (0).
  int run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mtw::worker
