// mtwarden-webfront: parse flags, set up logging, load the certificate, the
// users and the decoy, run the Front (docs/webfront.md) until SIGTERM/SIGINT.
// SIGHUP re-reads the users file and logs the counters.
#include <cstdio>
#include <exception>
#include <fstream>
#include <sstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "base/log.h"
#include "webfront/server.h"

namespace {

mtw::base::Result<std::vector<mtw::proto::WebUserSecret>> read_users(const std::string& path) {
  std::ifstream in(path);
  if (!in) return mtw::base::fail_errno("users file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return mtw::webfront::parse_user_table(ss.str());
}

int start_failure(const mtw::base::Error& e) {
  std::fprintf(stderr, "mtwarden-webfront: %s\n", e.to_string().c_str());
  return e.code == mtw::base::Errc::kBadInput ? 2 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mtw::webfront;
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
  if (!mtw::base::init_logging(opts->log_level))
    return start_failure({mtw::base::Errc::kBadInput, 0, "--log-level"});
  auto log = mtw::base::logger("webfront");
  try {
    auto users = read_users(opts->users_file);
    if (!users) return start_failure(users.error());
    auto certs = CertStore::open(opts->cert_file, opts->key_file);
    if (!certs) return start_failure(certs.error());
    auto decoy = opts->decoy_dir.empty() ? DecoySite() : DecoySite::load(opts->decoy_dir);
    if (!decoy) return start_failure(decoy.error());
    boost::asio::io_context io(1);
    auto backend = make_tcp_backend(io, opts->backend, opts->limits.backend_connect_timeout_ms);
    std::string users_file = opts->users_file;
    Front front(io, std::move(*opts), std::move(*certs), std::move(*decoy), *users,
                std::move(backend));
    if (auto r = front.start(); !r) return start_failure(r.error());
    boost::asio::signal_set hup(io, SIGHUP);
    boost::asio::signal_set stop(io, SIGTERM, SIGINT);
    stop.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      front.stop();  // io.run() returns once every connection has ended
      hup.cancel();
    });
    std::function<void()> wait_hup = [&] {
      hup.async_wait([&](const boost::system::error_code& ec, int) {
        if (ec) return;
        if (auto u = read_users(users_file)) {
          front.set_users(*u);
        } else {
          log->warn("users file not reloaded error={}", u.error().to_string());
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
