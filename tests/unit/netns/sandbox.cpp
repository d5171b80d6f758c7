// main() of the privileged netns tests: sandbox first, then GoogleTest; or a
// helper mode when started by a test inside a cell.
#include "tests/unit/netns/sandbox.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "netns/cell.h"
#include "netns/link.h"

namespace mtw::netns::testing {
namespace {

std::string g_skip = "sandbox not entered";

std::string enter_sandbox() {
  if (::geteuid() != 0) return "privileged tests need root (CAP_SYS_ADMIN + CAP_NET_ADMIN)";
  if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
    return std::string("unshare(CLONE_NEWNET|CLONE_NEWNS) failed: ") + std::strerror(errno);
  }
  // Private propagation first, so nothing mounted below leaks to the host.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return std::string("make-rprivate /: ") + std::strerror(errno);
  }
  if (::mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0) {
    return std::string("tmpfs on /run: ") + std::strerror(errno);
  }
  ::mkdir("/run/netns", 0755);
  // /sys/class/net shows the mounting namespace's links: remount for `ip`.
  ::umount2("/sys", MNT_DETACH);
  ::mount("sysfs", "/sys", "sysfs", 0, nullptr);
  auto sk = NlSocket::connect();
  if (!sk) return "netlink: " + sk.error().to_string();
  if (auto r = link_set_up(*sk, kLoopbackIfindex); !r) return "lo up: " + r.error().to_string();
  return {};
}

// --helper connect <ip> <port> <timeout_ms>: one TCP connect, result as exit code.
int helper_connect(int argc, char** argv) {
  if (argc < 5) return kConnectError;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(std::atoi(argv[3])));
  if (inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1) return kConnectError;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return kConnectError;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) return kConnectOk;
  if (errno == ECONNREFUSED) return kConnectRefused;
  if (errno != EINPROGRESS) return kConnectError;
  pollfd p{fd, POLLOUT, 0};
  if (::poll(&p, 1, std::atoi(argv[4])) == 0) return kConnectTimeout;
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err == 0) return kConnectOk;
  return err == ECONNREFUSED ? kConnectRefused : kConnectError;
}

CellHostConfig helper_config(char** argv) {
  CellHostConfig cfg;
  cfg.prefix = argv[2];
  cfg.nft_table = argv[3];
  cfg.pool.v4 = argv[4];
  return cfg;
}

// --helper crashy <prefix> <table> <pool4>: creates cells until killed.
int helper_crashy(int argc, char** argv) {
  if (argc < 5) return 2;
  auto host = CellHost::open(helper_config(argv));
  if (!host) return 3;
  ShaperRates rates{{10'000'000, 0}, {10'000'000, 0}};
  std::vector<Cell> cells;
  for (std::uint64_t i = 0;; ++i) {
    auto c = Cell::create(**host, short_id(i), rates);
    if (!c) return 4;
    cells.push_back(std::move(*c));
  }
}

// Clears CAP_NET_ADMIN from the effective, permitted and inheritable sets.
bool drop_net_admin() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &hdr, data) != 0) return false;
  for (auto& d : data) {
    d.effective &= ~(1u << CAP_NET_ADMIN);
    d.permitted &= ~(1u << CAP_NET_ADMIN);
    d.inheritable &= ~(1u << CAP_NET_ADMIN);
  }
  return ::syscall(SYS_capset, &hdr, data) == 0;
}

// --helper nocap <prefix> <table> <pool4> <what>: without CAP_NET_ADMIN,
// `what` = "cell" (Cell::create, no nft) or "host" (CellHost::open with nft).
// Prints the Errc name; exit 0 when it was kPermission.
int helper_nocap(int argc, char** argv) {
  if (argc < 6 || !drop_net_admin()) return 2;
  CellHostConfig cfg = helper_config(argv);
  std::string what = argv[5];
  base::Errc code = base::Errc::kInternal;
  if (what == "host") {
    auto host = CellHost::open(cfg);
    if (host) return 3;
    code = host.error().code;
    std::printf("%s\n", host.error().to_string().c_str());
  } else {
    cfg.manage_nft = false;
    cfg.ipv4_forwarding = false;
    auto host = CellHost::open(cfg);
    if (!host) return 4;
    auto c = Cell::create(**host, "nocap", ShaperRates{{10'000'000, 0}, {10'000'000, 0}});
    if (c) return 5;
    code = c.error().code;
    std::printf("%s\n", c.error().to_string().c_str());
  }
  std::fflush(stdout);
  return code == base::Errc::kPermission ? 0 : 6;
}

int run_helper(int argc, char** argv) {
  // argv: <exe> --helper <mode> args...; each mode sees argv[1] = <mode>.
  std::string m = argc > 2 ? argv[2] : "";
  if (m == "connect") return helper_connect(argc - 1, argv + 1);
  if (m == "crashy") return helper_crashy(argc - 1, argv + 1);
  if (m == "nocap") return helper_nocap(argc - 1, argv + 1);
  return 99;
}

}  // namespace

const std::string& sandbox_skip_reason() { return g_skip; }

std::string self_exe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

}  // namespace mtw::netns::testing

int main(int argc, char** argv) {
  if (argc > 2 && std::strcmp(argv[1], "--helper") == 0) {
    // _exit: helpers are killed or exit fast; skip leak checks of libnl's
    // process-lifetime caches.
    ::_exit(mtw::netns::testing::run_helper(argc, argv));
  }
  ::testing::InitGoogleTest(&argc, argv);
  mtw::netns::testing::g_skip = mtw::netns::testing::enter_sandbox();
  if (!mtw::netns::testing::g_skip.empty()) {
    std::fprintf(stderr, "netns sandbox unavailable, skipping: %s\n",
                 mtw::netns::testing::g_skip.c_str());
  }
  return RUN_ALL_TESTS();
}
