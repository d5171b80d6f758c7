// Cell scale bench: creates and destroys 1,000 cells inside a private
// network + mount namespace (never the host's), and times counter sweeps.
// Prints per-cell create/destroy time, kernel memory per cell (Slab +
// Percpu from /proc/meminfo) and sweep time. Needs root.
//   netns_bench [cells=1000] [sweeps=50]
// Goals (issue 5): <= 20 ms create, <= 10 ms destroy, <= 1 MiB/cell,
// <= 50 ms per 1,000-cell sweep.
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "netns/cell.h"
#include "netns/reconcile.h"

namespace {

using Clock = std::chrono::steady_clock;
using mtw::netns::Cell;
using mtw::netns::CellHost;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// Slab + Percpu in KiB: where namespaces, devices and qdiscs live.
long kernel_kib() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  long value = 0, total = 0;
  std::string unit;
  while (in >> key >> value) {
    if (key == "Slab:" || key == "Percpu:") total += value;
    std::getline(in, unit);
  }
  return total;
}

bool enter_sandbox() {
  if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) return false;
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
  if (::mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") != 0) return false;
  ::mkdir("/run/netns", 0755);
  return true;
}

void print_stats(const char* what, std::vector<double> v) {
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  std::printf("%-8s mean %.2f ms  p50 %.2f  p99 %.2f  max %.2f  (n=%zu)\n", what, sum / v.size(),
              v[v.size() / 2], v[v.size() * 99 / 100], v.back(), v.size());
}

}  // namespace

int main(int argc, char** argv) {
  int cells = argc > 1 ? std::atoi(argv[1]) : 1000;
  int sweeps = argc > 2 ? std::atoi(argv[2]) : 50;
  if (!enter_sandbox()) {
    std::fprintf(stderr, "cannot enter sandbox (need root): %s\n", std::strerror(errno));
    return 1;
  }
  mtw::netns::CellHostConfig cfg;
  cfg.prefix = "mtw";
  (void)mtw::netns::reconcile(cfg);
  auto host = CellHost::open(cfg);
  if (!host) {
    std::fprintf(stderr, "%s\n", host.error().to_string().c_str());
    return 1;
  }
  mtw::netns::ShaperRates rates{{20'000'000, 0}, {20'000'000, 0}};
  std::vector<Cell> all;
  all.reserve(static_cast<std::size_t>(cells));
  std::vector<double> create_ms, destroy_ms, sweep_ms;
  long kib0 = kernel_kib();
  for (int i = 0; i < cells; ++i) {
    auto t = Clock::now();
    auto c = Cell::create(**host, mtw::netns::short_id(static_cast<std::uint64_t>(i)), rates);
    create_ms.push_back(ms_since(t));
    if (!c) {
      std::fprintf(stderr, "cell %d: %s\n", i, c.error().to_string().c_str());
      return 1;
    }
    all.push_back(std::move(*c));
  }
  long kib1 = kernel_kib();
  std::size_t seen = 0;
  for (int s = 0; s < sweeps; ++s) {
    seen = 0;
    auto t = Clock::now();
    auto r = (*host)->sweep([&](const std::string&, const mtw::netns::CellCounters&) { ++seen; });
    sweep_ms.push_back(ms_since(t));
    if (!r) {
      std::fprintf(stderr, "sweep: %s\n", r.error().to_string().c_str());
      return 1;
    }
  }
  for (auto& c : all) {
    auto t = Clock::now();
    auto r = c.destroy();
    destroy_ms.push_back(ms_since(t));
    if (!r) {
      std::fprintf(stderr, "destroy: %s\n", r.error().to_string().c_str());
      return 1;
    }
  }
  // Namespaces are freed asynchronously by the kernel's cleanup_net worker.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  long kib2 = kernel_kib();
  std::printf("cells %d, sweep saw %zu links\n", cells, seen);
  print_stats("create", create_ms);
  print_stats("destroy", destroy_ms);
  print_stats("sweep", sweep_ms);
  std::printf("kernel Slab+Percpu: +%.1f KiB/cell while up (%.1f MiB total), %+ld KiB after teardown\n",
              static_cast<double>(kib1 - kib0) / cells, (kib1 - kib0) / 1024.0, kib2 - kib0);
  return 0;
}
