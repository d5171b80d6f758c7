#include "supervisor/mount_view.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <string_view>

namespace mtw::supervisor {
namespace {

namespace fs = std::filesystem;

// The resolver reads /etc (resolv.conf, hosts, nsswitch.conf) and loads NSS
// modules from /lib and /usr; /run may hold resolv.conf's target
// (systemd-resolved); /proc serves the secrets memfd (/proc/self/fd/4).
constexpr std::array<std::string_view, 16> kNeeded = {
    "/",     "/etc", "/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin",
    "/proc", "/dev", "/sys", "/run", "/var",   "/tmp",  "/home", "/root"};

// Lexically normal, without a trailing '/' (except for "/" itself).
fs::path normal(const std::string& s) {
  fs::path p = fs::path(s).lexically_normal();
  if (!p.has_filename() && p != p.root_path()) p = p.parent_path();
  return p;
}

// "/a/b" is "/a/b" or below it.
bool within(const fs::path& p, const fs::path& dir) {
  auto [d, q] = std::mismatch(dir.begin(), dir.end(), p.begin(), p.end());
  return d == dir.end();
}

}  // namespace

bool netns_dir_detachable(const std::string& netns_dir) {
  if (netns_dir.empty() || netns_dir.front() != '/') return false;
  const std::string s = normal(netns_dir).string();
  return std::find(kNeeded.begin(), kNeeded.end(), s) == kNeeded.end();
}

std::vector<std::string> worker_hidden_dirs(const MountViewInput& in) {
  std::vector<std::string> wanted = {"/etc/mtwarden", "/var/lib/mtwarden", "/run/mtwarden",
                                     in.state_dir,    in.run_dir,          in.netns_dir};
  if (!in.config_path.empty()) {
    wanted.push_back(normal(in.config_path).parent_path().string());
  }
  const fs::path bin = fs::path(in.worker_bin).lexically_normal();
  std::vector<std::string> out;
  for (const auto& w : wanted) {
    if (w.empty() || w.front() != '/') continue;
    const fs::path p = normal(w);
    const std::string s = p.string();
    if (std::find(kNeeded.begin(), kNeeded.end(), s) != kNeeded.end()) continue;
    if (!in.worker_bin.empty() && within(bin, p)) continue;
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  }
  return out;
}

}  // namespace mtw::supervisor
