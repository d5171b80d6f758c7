// mtw-bench-loadgen: client-side load for the worker benchmarks (issue 4),
// loopback only. Speaks raw TCP (baselines) or the real client protocol via
// proto/'s client builders: obfuscated2 with tag ef/ee/dd, or fake TLS
// (ClientHello, ServerHello HMAC check, then dd inside TLS records).
//   --mode throughput  N connections move bytes one way for --duration
//                      seconds after --warmup; the DC side sinks (upload) or
//                      sources (download). Payload is not encrypted: in direct
//                      mode nobody parses it, so the client costs the same CPU
//                      in baseline and worker runs. --direction echo (ee or
//                      dd): whole intermediate packets, encrypted like a
//                      client's, go up while the echo is read and counted
//                      (what a middle proxy can carry: it relays packets).
//   --mode idle        opens N connections, each with a handshake and one
//                      verified echo round trip, holds them, and reads
//                      VmRSS of --pid before, with all open, and after close.
//   --mode handshakes  --concurrency loops of connect, handshake, verified
//                      echo round trip, close, for --duration seconds.
//   --mode latency     --conns sequential fresh connections (one at a time):
//                      each is timed from connect() to the verified echo of
//                      its first packet, then closed; reports p50/p90/p99/max.
//                      With --secrets-file (one secret per line) connection i
//                      uses line i mod lines (e.g. one cold user each), and
//                      --gap-ms waits between connections; --samples-file F
//                      writes every sample (us, one per line) to F.
//                      --warmup-conns N first makes N untimed connections
//                      with --secret: a fresh process's first connection
//                      pays one-time costs of its own (4-9 ms measured).
// Prints one JSON line on stdout. Every phase is bounded by --timeout.

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "bench/loadgen_client.h"

namespace mtw::bench {
namespace {

using asio::awaitable;
using asio::use_awaitable;

enum class Mode { kThroughput, kIdle, kHandshakes, kLatency };

struct Options {
  ClientConfig client;
  Mode mode = Mode::kThroughput;
  bool upload = false;
  bool echo = false;  // --direction echo: framed packets up, the echo counted down
  std::size_t conns = 1;
  std::size_t concurrency = 64;
  double duration_s = 5;
  double warmup_s = 1;
  double hold_s = 0;
  double timeout_s = 120;
  long pid = 0;     // the proxy under test: VmRSS, fds, CPU
  long dc_pid = 0;  // the fake DC: CPU only
  std::string label;
  std::vector<proto::Secret> secrets;  // --secrets-file: per-connection secrets (latency)
  double gap_s = 0;                    // latency: pause between connections
  std::string samples_file;            // latency: every sample (us), one per line
  std::size_t warmup_conns = 0;        // latency: untimed connections first
};

struct Run {
  Run(asio::io_context& io_ctx, const Options& o) : io(io_ctx), opts(o) {}
  asio::io_context& io;
  const Options& opts;
  std::vector<std::unique_ptr<ClientConn>> conns;
  std::uint64_t bytes = 0;
  std::size_t failed = 0;
  std::size_t done = 0;  // handshakes completed (handshakes mode)
  std::size_t next = 0;  // next connection index to open
  std::size_t busy = 0;  // coroutines still running
  std::string first_error;

  void note_failure(const base::Error& e) {
    ++failed;
    if (first_error.empty()) first_error = e.to_string();
  }
};

awaitable<void> sleep_for(double seconds) {
  asio::steady_timer t(co_await asio::this_coro::executor,
                       std::chrono::microseconds(static_cast<std::int64_t>(seconds * 1e6)));
  co_await t.async_wait(use_awaitable);
}

// Waits (polling, bounded by --timeout) until every spawned coroutine ended.
awaitable<void> wait_idle(Run& run) {
  while (run.busy > 0) co_await sleep_for(0.02);
}

// Opens connections until `run.next` reaches the goal; many of these run at once.
awaitable<void> opener(Run& run, std::size_t goal, bool echo) {
  while (run.next < goal) {
    std::size_t index = run.next++;
    auto conn = co_await open_client(run.opts.client, index, echo);
    if (conn) {
      run.conns.push_back(std::move(*conn));
    } else {
      run.note_failure(conn.error());
    }
  }
  --run.busy;
}

awaitable<void> open_all(Run& run, std::size_t goal, bool echo) {
  auto exec = co_await asio::this_coro::executor;
  std::size_t width = std::min(run.opts.concurrency, goal);
  for (std::size_t i = 0; i < width; ++i) {
    ++run.busy;
    asio::co_spawn(exec, opener(run, goal, echo), log_exception);
  }
  co_await wait_idle(run);
}

awaitable<void> pump_upload(Run& run, ClientConn& c, std::shared_ptr<const proto::Bytes> chunk) {
  for (;;) {
    auto [ec, n] = co_await asio::async_write(c.sock, asio::buffer(*chunk), kNoThrow);
    if (ec) break;
    run.bytes += n;
  }
  --run.busy;
}

awaitable<void> pump_download(Run& run, ClientConn& c) {
  std::vector<std::byte> buf(run.opts.client.chunk_bytes);
  for (;;) {
    auto [ec, n] = co_await c.sock.async_read_some(asio::buffer(buf), kNoThrow);
    if (ec) break;
    run.bytes += n;
  }
  --run.busy;
}

// --direction echo: whole intermediate packets of 16380 bytes (a middle
// proxy relays packets, so the bytes must parse), about chunk_bytes in all.
proto::Bytes framed_chunk(const ClientConfig& cfg) {
  constexpr std::size_t kPacket = 16 * 1024 - 4;
  const std::size_t n = std::max<std::size_t>(1, cfg.chunk_bytes / (kPacket + 4));
  proto::Bytes out(n * (kPacket + 4), std::byte{0x5a});
  for (std::size_t i = 0; i < n; ++i) proto::store_le32(out.data() + i * (kPacket + 4), kPacket);
  return out;
}

// Encrypts each copy with the connection's stream, as a real client does.
awaitable<void> pump_upload_framed(Run& run, ClientConn& c,
                                   std::shared_ptr<const proto::Bytes> plain) {
  proto::Bytes wire(plain->size());
  for (;;) {
    std::copy(plain->begin(), plain->end(), wire.begin());
    c.encrypt.apply(wire);
    auto [ec, n] = co_await asio::async_write(c.sock, asio::buffer(wire), kNoThrow);
    if (ec) break;
  }
  --run.busy;
}

void close_all(Run& run) {
  boost::system::error_code ignored;
  for (auto& c : run.conns) c->sock.close(ignored);
}

awaitable<void> throughput(Run& run) {
  const Options& o = run.opts;
  co_await open_all(run, o.conns, /*echo=*/false);
  auto exec = co_await asio::this_coro::executor;
  auto chunk = std::make_shared<const proto::Bytes>(o.echo ? framed_chunk(o.client)
                                                           : upload_chunk(o.client));
  for (auto& c : run.conns) {
    ++run.busy;
    if (o.echo) {
      ++run.busy;
      asio::co_spawn(exec, pump_upload_framed(run, *c, chunk), log_exception);
      asio::co_spawn(exec, pump_download(run, *c), log_exception);
    } else if (o.upload) {
      asio::co_spawn(exec, pump_upload(run, *c, chunk), log_exception);
    } else {
      asio::co_spawn(exec, pump_download(run, *c), log_exception);
    }
  }
  co_await sleep_for(o.warmup_s);
  std::uint64_t b0 = run.bytes;
  auto t0 = std::chrono::steady_clock::now();
  CpuMeter proxy_cpu(o.pid), self_cpu(0), dc_cpu(o.dc_pid);
  co_await sleep_for(o.duration_s);
  std::uint64_t b1 = run.bytes;
  double secs = seconds_since(t0);
  double proxy_pct = o.pid ? proxy_cpu.percent() : -1, self_pct = self_cpu.percent();
  double dc_pct = o.dc_pid ? dc_cpu.percent() : -1;
  close_all(run);
  co_await wait_idle(run);
  double mb_s = static_cast<double>(b1 - b0) / secs / 1e6;
  std::printf(
      "{\"mode\":\"throughput\",\"label\":\"%s\",\"proto\":\"%s\",\"direction\":\"%s\","
      "\"conns\":%zu,\"established\":%zu,\"failed\":%zu,\"seconds\":%.3f,\"bytes\":%llu,"
      "\"mb_per_s\":%.1f,\"proxy_cpu_pct\":%.0f,\"loadgen_cpu_pct\":%.0f,"
      "\"dc_cpu_pct\":%.0f,\"first_error\":\"%s\"}\n",
      o.label.c_str(), proto_name(o.client.proto),
      o.echo ? "echo" : (o.upload ? "upload" : "download"), o.conns, run.conns.size(), run.failed,
      secs, static_cast<unsigned long long>(b1 - b0), mb_s, proxy_pct, self_pct, dc_pct,
      run.first_error.c_str());
}

std::int64_t fd_count(long pid) {
  std::error_code ec;
  std::int64_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return ec ? -1 : n;
}

awaitable<void> idle(Run& run) {
  const Options& o = run.opts;
  std::int64_t rss0 = o.pid ? proc_status_kib(o.pid, "VmRSS") : -1;
  auto t0 = std::chrono::steady_clock::now();
  co_await open_all(run, o.conns, /*echo=*/true);
  double open_s = seconds_since(t0);
  co_await sleep_for(1.0);  // let the worker finish any deferred frees
  std::int64_t rss1 = o.pid ? proc_status_kib(o.pid, "VmRSS") : -1;
  std::int64_t fds = o.pid ? fd_count(o.pid) : -1;
  co_await sleep_for(o.hold_s);
  std::size_t held = run.conns.size();
  close_all(run);
  run.conns.clear();
  co_await sleep_for(2.0);  // the worker notices the closes and frees
  std::int64_t rss2 = o.pid ? proc_status_kib(o.pid, "VmRSS") : -1;
  double per_conn = held ? static_cast<double>(rss1 - rss0) / static_cast<double>(held) : 0;
  std::printf(
      "{\"mode\":\"idle\",\"label\":\"%s\",\"proto\":\"%s\",\"conns\":%zu,\"established\":%zu,"
      "\"failed\":%zu,\"open_seconds\":%.2f,\"pid\":%ld,\"rss_before_kib\":%lld,"
      "\"rss_open_kib\":%lld,\"rss_after_close_kib\":%lld,\"proxy_fds_open\":%lld,"
      "\"kib_per_conn\":%.2f,\"first_error\":\"%s\"}\n",
      o.label.c_str(), proto_name(o.client.proto), o.conns, held, run.failed, open_s, o.pid,
      static_cast<long long>(rss0), static_cast<long long>(rss1), static_cast<long long>(rss2),
      static_cast<long long>(fds), per_conn, run.first_error.c_str());
}

awaitable<void> handshake_loop(Run& run, std::chrono::steady_clock::time_point end,
                               std::size_t index) {
  while (std::chrono::steady_clock::now() < end) {
    auto conn = co_await open_client(run.opts.client, index, /*echo=*/true);
    if (conn) {
      ++run.done;
      boost::system::error_code ignored;
      (*conn)->sock.close(ignored);
    } else {
      run.note_failure(conn.error());
    }
    index += run.opts.concurrency;
  }
  --run.busy;
}

awaitable<void> handshakes(Run& run) {
  const Options& o = run.opts;
  auto exec = co_await asio::this_coro::executor;
  auto t0 = std::chrono::steady_clock::now();
  CpuMeter proxy_cpu(o.pid), self_cpu(0), dc_cpu(o.dc_pid);
  auto end = t0 + std::chrono::microseconds(static_cast<std::int64_t>(o.duration_s * 1e6));
  for (std::size_t i = 0; i < o.concurrency; ++i) {
    ++run.busy;
    asio::co_spawn(exec, handshake_loop(run, end, i), log_exception);
  }
  co_await wait_idle(run);
  double secs = seconds_since(t0);
  std::printf(
      "{\"mode\":\"handshakes\",\"label\":\"%s\",\"proto\":\"%s\",\"concurrency\":%zu,"
      "\"seconds\":%.3f,\"handshakes\":%zu,\"failed\":%zu,\"per_s\":%.1f,"
      "\"proxy_cpu_pct\":%.0f,\"loadgen_cpu_pct\":%.0f,\"dc_cpu_pct\":%.0f,"
      "\"first_error\":\"%s\"}\n",
      o.label.c_str(), proto_name(o.client.proto), o.concurrency, secs, run.done, run.failed,
      static_cast<double>(run.done) / secs, o.pid ? proxy_cpu.percent() : -1.0, self_cpu.percent(),
      o.dc_pid ? dc_cpu.percent() : -1.0, run.first_error.c_str());
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  std::size_t i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

awaitable<void> latency(Run& run) {
  const Options& o = run.opts;
  std::vector<double> us;
  us.reserve(o.conns);
  for (std::size_t i = 0; i < o.warmup_conns; ++i) {
    auto conn = co_await open_client(o.client, i, /*echo=*/true);
    if (!conn) run.note_failure(conn.error());
  }
  for (std::size_t i = 0; i < o.conns; ++i) {
    ClientConfig cfg = o.client;
    if (!o.secrets.empty()) cfg.secret = o.secrets[i % o.secrets.size()];
    auto t0 = std::chrono::steady_clock::now();
    auto conn = co_await open_client(cfg, i, /*echo=*/true);
    double t = seconds_since(t0) * 1e6;
    if (conn) {
      us.push_back(t);
      boost::system::error_code ignored;
      (*conn)->sock.close(ignored);
    } else {
      run.note_failure(conn.error());
    }
    if (o.gap_s > 0) co_await sleep_for(o.gap_s);
  }
  double sum = 0;
  for (double x : us) sum += x;
  if (!o.samples_file.empty()) {
    // Raw samples in connection order, so a caller can pool interleaved runs.
    std::ofstream f(o.samples_file, std::ios::trunc);
    for (double x : us) f << static_cast<long>(x) << '\n';
    if (!f) run.note_failure(base::Error{Errc::kSyscall, errno, "--samples-file: write failed"});
  }
  std::printf(
      "{\"mode\":\"latency\",\"label\":\"%s\",\"proto\":\"%s\",\"conns\":%zu,\"ok\":%zu,"
      "\"failed\":%zu,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,"
      "\"min_us\":%.1f,\"mean_us\":%.1f,\"first_error\":\"%s\"}\n",
      o.label.c_str(), proto_name(o.client.proto), o.conns, us.size(), run.failed,
      percentile(us, 0.5), percentile(us, 0.9), percentile(us, 0.99), percentile(us, 1.0),
      percentile(us, 0.0), us.empty() ? -1.0 : sum / static_cast<double>(us.size()),
      run.first_error.c_str());
}

awaitable<void> run_mode(Run& run) {
  switch (run.opts.mode) {
    case Mode::kThroughput:
      co_await throughput(run);
      break;
    case Mode::kIdle:
      co_await idle(run);
      break;
    case Mode::kHandshakes:
      co_await handshakes(run);
      break;
    case Mode::kLatency:
      co_await latency(run);
      break;
  }
  std::fflush(stdout);
  run.io.stop();
}

[[nodiscard]] Result<Mode> parse_mode(const std::string& s) {
  if (s == "throughput") return Mode::kThroughput;
  if (s == "idle") return Mode::kIdle;
  if (s == "handshakes") return Mode::kHandshakes;
  if (s == "latency") return Mode::kLatency;
  return base::fail(Errc::kBadInput, "--mode throughput|idle|handshakes|latency");
}

[[nodiscard]] Result<Options> parse_options(int argc, char** argv) {
  auto flags = Flags::parse(
      argc, argv, {"target", "proto",        "secret",      "dc",        "mode",  "direction",
                   "conns",  "concurrency",  "duration",    "warmup",    "hold",  "timeout",
                   "pid",    "dc-pid",       "sources",     "chunk-kib", "label", "secrets-file",
                   "gap-ms", "samples-file", "warmup-conns"});
  if (!flags) return tl::unexpected(flags.error());
  Options o;
  auto client = parse_client_config(*flags);
  if (!client) return tl::unexpected(client.error());
  o.client = std::move(*client);
  auto mode = parse_mode(flags->str("mode", "throughput"));
  if (!mode) return tl::unexpected(mode.error());
  o.mode = *mode;
  std::string dir = flags->str("direction", "download");
  if (dir != "upload" && dir != "download" && dir != "echo") {
    return base::fail(Errc::kBadInput, "--direction upload|download|echo");
  }
  o.upload = dir == "upload";
  o.echo = dir == "echo";
  if (o.echo &&
      (o.client.proto != ProtoKind::kIntermediate && o.client.proto != ProtoKind::kPadded))
    return base::fail(Errc::kBadInput, "--direction echo needs --proto ee or dd");
  auto conns = flags->num("conns", 1), conc = flags->num("concurrency", 64);
  auto dur = flags->num("duration", 5), warm = flags->num("warmup", 1);
  auto hold = flags->num("hold", 0), timeout = flags->num("timeout", 120);
  auto pid = flags->num("pid", 0), dc_pid = flags->num("dc-pid", 0);
  if (!conns || !conc || !dur || !warm || !hold || !timeout || !pid || !dc_pid || *conns < 1 ||
      *conns > 1e6 || *conc < 1 || *dur > 3600 || *timeout > 3600) {
    return base::fail(Errc::kBadInput, "bad number in flags");
  }
  o.conns = static_cast<std::size_t>(*conns);
  o.concurrency = static_cast<std::size_t>(*conc);
  o.duration_s = *dur;
  o.warmup_s = *warm;
  o.hold_s = *hold;
  o.timeout_s = *timeout;
  o.pid = static_cast<long>(*pid);
  o.dc_pid = static_cast<long>(*dc_pid);
  o.label = flags->str("label");
  if (flags->has("secrets-file")) {
    std::ifstream in(flags->str("secrets-file"));
    if (!in) return base::fail(Errc::kBadInput, "--secrets-file: cannot read");
    for (std::string line; std::getline(in, line);) {
      if (line.empty() || line[0] == '#') continue;
      auto secret = proto::parse_secret(line);
      if (!secret) return base::fail(Errc::kBadInput, "--secrets-file: " + secret.error().context);
      if (o.client.proto == ProtoKind::kTls && secret->kind != proto::SecretKind::kFakeTls) {
        return base::fail(Errc::kBadInput, "--secrets-file: --proto tls needs ee secrets");
      }
      o.secrets.push_back(std::move(*secret));
    }
    if (o.secrets.empty()) return base::fail(Errc::kBadInput, "--secrets-file: no secrets");
  }
  auto gap = flags->num("gap-ms", 0);
  if (!gap || *gap < 0) return base::fail(Errc::kBadInput, "bad --gap-ms");
  o.gap_s = *gap / 1000.0;
  o.samples_file = flags->str("samples-file");
  auto wc = flags->num("warmup-conns", 0);
  if (!wc || *wc < 0 || *wc > 1000)
    return base::fail(Errc::kBadInput, "bad --warmup-conns (0..1000)");
  o.warmup_conns = static_cast<std::size_t>(*wc);
  return o;
}

int run(int argc, char** argv) {
  auto opts = parse_options(argc, argv);
  if (!opts) {
    std::fprintf(stderr, "usage: see bench/README.md\nerror: %s\n",
                 opts.error().to_string().c_str());
    return 2;
  }
  raise_fd_limit();
  asio::io_context io(1);
  Run run(io, *opts);
  bool timed_out = false;
  asio::steady_timer guard(
      io, std::chrono::milliseconds(static_cast<std::int64_t>(opts->timeout_s * 1000)));
  guard.async_wait([&](boost::system::error_code ec) {
    if (ec) return;
    timed_out = true;
    io.stop();
  });
  asio::co_spawn(io, run_mode(run), log_exception);
  io.run();
  if (timed_out) {
    std::printf("{\"error\":\"timeout after %.0f s\",\"established\":%zu,\"failed\":%zu}\n",
                opts->timeout_s, run.conns.size(), run.failed);
    return 1;
  }
  return run.failed == 0 ? 0 : 3;
}

}  // namespace
}  // namespace mtw::bench

int main(int argc, char** argv) {
  return mtw::bench::tool_main("mtw-bench-loadgen", mtw::bench::run, argc, argv);
}
