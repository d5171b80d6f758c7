// Small helpers shared by the worker benchmark tools (mtw-bench-relay,
// mtw-bench-loadgen, mtw-bench-dc): flag parsing, endpoints, socket options
// and reading /proc. Benchmark tools only; loopback use. Not thread-safe
// (each tool runs one io_context on one thread).
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>

#include "base/error.h"

namespace mtw::bench {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using base::Errc;
using base::Result;

// Relay and tools move data in chunks of this size unless told otherwise:
// 64 KiB is the top of the 16-64 KiB range good Asio relays use.
inline constexpr std::size_t kDefaultChunkBytes = 64 * 1024;

// "--name value" pairs. Every flag takes a value; unknown names are errors so
// that a typo in worker_bench.sh fails loudly instead of measuring defaults.
class Flags {
 public:
  [[nodiscard]] static Result<Flags> parse(int argc, char** argv,
                                           const std::set<std::string>& known) {
    Flags f;
    for (int i = 1; i < argc; i += 2) {
      std::string name = argv[i];
      if (!name.starts_with("--") || !known.contains(name.substr(2))) {
        return base::fail(Errc::kBadInput, "unknown flag " + name);
      }
      if (i + 1 >= argc) return base::fail(Errc::kBadInput, "flag needs a value: " + name);
      f.values_[name.substr(2)] = argv[i + 1];
    }
    return f;
  }
  std::string str(const std::string& name, std::string fallback = {}) const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }
  // Numbers: a malformed value is an error, not a silent default.
  [[nodiscard]] Result<double> num(const std::string& name, double fallback) const {
    auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    double v = 0;
    const std::string& s = it->second;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) {
      return base::fail(Errc::kBadInput, "flag --" + name + " is not a number");
    }
    return v;
  }
  bool has(const std::string& name) const { return values_.contains(name); }

 private:
  std::map<std::string, std::string> values_;
};

// "HOST:PORT" with a numeric IPv4 host, or "[v6]:PORT".
[[nodiscard]] inline Result<tcp::endpoint> parse_endpoint(std::string_view text) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return base::fail(Errc::kBadInput, "want HOST:PORT");
  std::string host(text.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  auto ps = text.substr(colon + 1);
  auto [p, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), port);
  if (ec != std::errc() || p != ps.data() + ps.size() || port > 65535) {
    return base::fail(Errc::kBadInput, "bad port in endpoint");
  }
  boost::system::error_code aec;
  auto addr = asio::ip::make_address(host, aec);
  if (aec) return base::fail(Errc::kBadInput, "bad address in endpoint");
  return tcp::endpoint(addr, static_cast<unsigned short>(port));
}

// The worker sets TCP_NODELAY on every socket (issue 4); the tools match it
// so that the comparison measures the relay, not Nagle.
inline void set_nodelay(tcp::socket& s) {
  boost::system::error_code ec;
  s.set_option(tcp::no_delay(true), ec);
}

// Lets many client sockets bind to 127.0.0.x without each bind reserving a
// port up front: the port is picked at connect() time per 4-tuple.
inline void set_bind_no_port(tcp::socket& s) {
  int one = 1;
  ::setsockopt(s.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
}

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
inline std::uint64_t raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  ::getrlimit(RLIMIT_NOFILE, &rl);
  return rl.rlim_cur;
}

// A field of /proc/PID/status in KiB ("VmRSS", "VmHWM"); -1 if unreadable.
inline std::int64_t proc_status_kib(long pid, std::string_view field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(field) && line.size() > field.size() && line[field.size()] == ':') {
      return std::stoll(line.substr(field.size() + 1));
    }
  }
  return -1;
}

// Completion handler for co_spawn: a session that throws is dropped and logged.
inline void log_exception(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "session failed error=%s\n", ex.what());
  }
}

// CPU seconds (user + system) used so far by process `pid` (0: this
// process); -1 if unreadable. From /proc/PID/stat fields 14 and 15.
inline double cpu_seconds(long pid) {
  std::ifstream in(pid ? "/proc/" + std::to_string(pid) + "/stat" : std::string("/proc/self/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(stat.substr(close + 2));
  std::string skip;
  for (int i = 3; i < 14; ++i) fields >> skip;  // state .. cmajflt
  long long utime = 0, stime = 0;
  if (!(fields >> utime >> stime)) return -1;
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// CPU use of a process over a wall-clock interval, in percent of one CPU.
class CpuMeter {
 public:
  explicit CpuMeter(long pid) : pid_(pid), cpu0_(cpu_seconds(pid)) {}
  double percent() const {
    double cpu = cpu_seconds(pid_);
    double wall = seconds_since(t0_);
    if (cpu < 0 || cpu0_ < 0 || wall <= 0) return -1;
    return 100.0 * (cpu - cpu0_) / wall;
  }

 private:
  static double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  long pid_;
  double cpu0_;
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
};

// Shared main() of the bench tools: runs `run`, turning an escaped exception
// (Boost.Asio throws on bind/listen failures) into a message and exit code 1.
template <class Run>
int tool_main(const char* name, Run run, int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 1;
  }
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace mtw::bench
