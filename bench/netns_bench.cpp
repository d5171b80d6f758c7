// Cell scale bench: creates and destroys 1,000 cells inside a private
// network + mount namespace (never the host's), and times counter sweeps.
// Prints per-cell create/destroy time, kernel memory per cell (Slab +
// Percpu from /proc/meminfo), sweep time (CellHost::sweep: RTM_GETSTATS, and
// for comparison the name-based RTM_GETLINK CounterReader::sweep, interleaved
// so both see the same machine load) and how long the kernel takes to free
// the destroyed cells' veths in the background. Needs root.
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
  std::vector<double> create_ms, destroy_ms, sweep_ms, getlink_ms;
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
  auto reader = mtw::netns::CounterReader::open();
  if (!reader) {
    std::fprintf(stderr, "%s\n", reader.error().to_string().c_str());
    return 1;
  }
  std::size_t seen = 0, seen_getlink = 0;
  std::uint64_t bytes = 0;  // consume the values so nothing is optimised away
  for (int s = 0; s < sweeps; ++s) {
    seen = 0;
    auto t = Clock::now();
    auto r = (*host)->sweep([&](const std::string&, const mtw::netns::CellCounters& c) {
      ++seen;
      bytes += c.download_bytes;
    });
    sweep_ms.push_back(ms_since(t));
    seen_getlink = 0;
    t = Clock::now();
    auto g = reader->sweep(cfg.prefix, [&](const mtw::netns::LinkCounters& c) {
      ++seen_getlink;
      bytes += c.tx_bytes;
    });
    getlink_ms.push_back(ms_since(t));
    if (!r || !g) {
      std::fprintf(stderr, "sweep: %s\n", (!r ? r : g).error().to_string().c_str());
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
  // Namespaces (and with them the veths) are freed asynchronously by the
  // kernel's cleanup_net worker: wait until reap() sees every host end gone.
  auto drain_t = Clock::now();
  while ((*host)->retiring() > 0 && ms_since(drain_t) < 120'000) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    (void)(*host)->reap();
  }
  double drain_ms = ms_since(drain_t);
  std::size_t still = (*host)->retiring();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  long kib2 = kernel_kib();
  std::printf("cells %d, sweep saw %zu cells, getlink sweep saw %zu links (checksum %llu)\n", cells,
              seen, seen_getlink, static_cast<unsigned long long>(bytes % 1000));
  print_stats("create", create_ms);
  print_stats("destroy", destroy_ms);
  print_stats("sweep", sweep_ms);
  print_stats("getlink", getlink_ms);
  std::printf("async teardown: all host ends gone %.0f ms after the last destroy (%zu left)\n",
              drain_ms, still);
  std::printf(
      "kernel Slab+Percpu: +%.1f KiB/cell while up (%.1f MiB total), %+ld KiB after teardown\n",
      static_cast<double>(kib1 - kib0) / cells, (kib1 - kib0) / 1024.0, kib2 - kib0);
  return 0;
}
