// mtwarden-webfront: parse flags, set up logging, load the certificate, the
// users and the decoy, run the Front (docs/webfront.md) until SIGTERM/SIGINT
// or, managed, until the supervisor closes the control socket. Standalone,
// SIGHUP re-reads the users file; it always logs the counters.
#include <cstdio>
#include <exception>
#include <fstream>
#include <sstream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "base/log.h"
#include "conn/syscall_filter.h"
#include "webfront/control.h"
#include "webfront/server.h"

namespace {

using namespace mtw::webfront;

mtw::base::Result<std::vector<mtw::proto::WebUserSecret>> read_users(const std::string& path) {
  if (path.empty()) return std::vector<mtw::proto::WebUserSecret>{};  // managed: gate-table
  std::ifstream in(path);
  if (!in) return mtw::base::fail_errno("users file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_user_table(ss.str());
}

int start_failure(const mtw::base::Error& e) {
  std::fprintf(stderr, "mtwarden-webfront: %s\n", e.to_string().c_str());
  return e.code == mtw::base::Errc::kBadInput ? 2 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  auto opts = parse_front_options(args);
  if (!opts) {
    std::fprintf(stderr, "mtwarden-webfront: %s\nTry 'mtwarden-webfront --help'.\n",
                 opts.error().context.c_str());
    return 2;
  }
  if (opts->help) {
    std::fputs(front_usage_text().c_str(), stdout);
    return 0;
  }
  if (!mtw::base::init_logging(opts->log_level)) {
    return start_failure({mtw::base::Errc::kBadInput, 0, "--log-level: unknown level"});
  }
  auto log = mtw::base::logger("webfront");
  try {
    const std::string users_file = opts->users_file;
    auto users = read_users(users_file);
    if (!users) return start_failure(users.error());
    auto certs = CertStore::open(opts->cert_file, opts->key_file);
    if (!certs) return start_failure(certs.error());
    auto decoy = opts->decoy_dir.empty() ? DecoySite() : DecoySite::load(opts->decoy_dir);
    if (!decoy) return start_failure(decoy.error());
    boost::asio::io_context io(1);
    std::unique_ptr<Control> control;
    std::unique_ptr<StreamBackend> backend;
    if (opts->control_fd >= 0) {
      auto c = Control::adopt(io, opts->control_fd, opts->listener_id);
      if (!c) return start_failure(c.error());
      control = std::move(*c);
      backend = control->backend();
    } else {
      backend = make_tcp_backend(io, opts->backend, opts->limits.backend_connect_timeout_ms);
    }
    Front front(io, std::move(*opts), std::move(*certs), std::move(*decoy), *users,
                std::move(backend));
    if (auto r = front.start(); !r) return start_failure(r.error());
    // The gate's and the workers' filter, installed once the listeners are
    // adopted and before any client byte is read (docs/security.md).
    if (auto r = mtw::conn::install_syscall_filter(); !r) {
      log->error("seccomp filter not installed error={}", r.error().to_string());
      return 1;
    }
    boost::asio::signal_set hup(io, SIGHUP);
    boost::asio::signal_set stop(io, SIGTERM, SIGINT);
    auto stop_all = [&] {
      front.stop();  // io.run() returns once every connection has ended
      hup.cancel();
      stop.cancel();
      if (control) control->stop();
    };
    stop.async_wait([&](const boost::system::error_code& ec, int) {
      if (!ec) stop_all();
    });
    if (control) {
      control->start({[&](const auto& u) { front.set_users(u); },
                      [&] { return report_counters(front.counters(), *control); }, stop_all});
    }
    std::function<void()> wait_hup = [&] {
      hup.async_wait([&](const boost::system::error_code& ec, int) {
        if (ec) return;
        if (!control) {
          if (auto u = read_users(users_file)) {
            front.set_users(*u);
          } else {
            log->warn("users file not reloaded error={}", u.error().to_string());
          }
        }
        log->info("counters {}", front.counters_line());
        wait_hup();
      });
    };
    wait_hup();
    log->info("started");
    io.run();
    log->info("stopped {}", front.counters_line());
    return 0;
  } catch (const std::exception& e) {
    log->critical("webfront failed error={}", e.what());
    return 1;
  }
}
