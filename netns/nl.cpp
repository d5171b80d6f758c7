#include "netns/nl.h"

#include <sched.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <system_error>
#include <thread>
#include <utility>

#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

namespace mtw::netns {

using base::Errc;

NlSocket::NlSocket(NlSocket&& o) noexcept : sk_(std::exchange(o.sk_, nullptr)) {}

NlSocket& NlSocket::operator=(NlSocket&& o) noexcept {
  std::swap(sk_, o.sk_);
  return *this;
}

NlSocket::~NlSocket() {
  if (sk_ != nullptr) nl_socket_free(sk_);  // closes the fd too
}

base::Result<NlSocket> NlSocket::connect() {
  nl_sock* sk = nl_socket_alloc();
  if (sk == nullptr) return base::fail(Errc::kInternal, "nl_socket_alloc");
  NlSocket s(sk);
  if (int err = nl_connect(sk, NETLINK_ROUTE); err < 0)
    return tl::unexpected(nl_error(err, "nl_connect"));
  // Big enough for a 1,000-link dump burst without ENOBUFS.
  nl_socket_set_buffer_size(sk, 4 << 20, 1 << 20);
  return s;
}

base::Result<NlSocket> NlSocket::connect_in(int netns_fd) {
  NlSocket out;
  auto r = in_netns(netns_fd, [&]() -> base::Result<void> {
    auto s = connect();
    if (!s) return tl::unexpected(s.error());
    out = std::move(*s);
    return {};
  });
  if (!r) return tl::unexpected(r.error());
  return out;
}

base::Error nl_error(int nl_err, std::string context) {
  int code = nl_err < 0 ? -nl_err : nl_err;
  base::Error e{Errc::kNetlink, 0, std::move(context)};
  switch (code) {
    case NLE_PERM:
    case NLE_NOACCESS:
      e.code = Errc::kPermission;
      e.sys_errno = EPERM;
      e.context += " (CAP_NET_ADMIN required)";
      break;
    case NLE_EXIST:
      e.code = Errc::kExists;
      e.sys_errno = EEXIST;
      break;
    case NLE_NODEV:
      e.code = Errc::kNotFound;
      e.sys_errno = ENODEV;
      break;
    case NLE_OBJ_NOTFOUND:
      e.code = Errc::kNotFound;
      e.sys_errno = ENOENT;
      break;
    default:
      e.context += std::string(" nl=") + nl_geterror(code);
      break;
  }
  return e;
}

bool nl_is_gone(int nl_err) noexcept {
  int code = nl_err < 0 ? -nl_err : nl_err;
  return code == NLE_NODEV || code == NLE_OBJ_NOTFOUND;
}

namespace {
std::atomic<std::uint64_t> g_in_netns_calls{0};
}  // namespace

std::uint64_t in_netns_calls() noexcept { return g_in_netns_calls.load(std::memory_order_relaxed); }

base::Result<void> in_netns(int netns_fd, const std::function<base::Result<void>()>& fn) {
  g_in_netns_calls.fetch_add(1, std::memory_order_relaxed);
  base::Result<void> result;
  // A fresh thread per call costs ~50 us; it is the price of never moving a
  // long-lived thread between namespaces (setns affects only the caller).
  try {
    std::thread t([&] {
      if (::setns(netns_fd, CLONE_NEWNET) != 0) {
        int err = errno;
        result = tl::unexpected(base::Error{err == EPERM ? Errc::kPermission : Errc::kSyscall, err,
                                            "setns into netns (CAP_SYS_ADMIN required)"});
        return;
      }
      result = fn();
    });
    t.join();
  } catch (const std::system_error& e) {
    return base::fail_errno(std::string("thread for setns: ") + e.what(), e.code().value());
  }
  return result;
}

base::Result<base::UniqueFd> socket_in(int netns_fd, int domain, int type, int proto) {
  base::UniqueFd fd;
  auto r = in_netns(netns_fd, [&]() -> base::Result<void> {
    fd.reset(::socket(domain, type | SOCK_CLOEXEC, proto));
    if (!fd) return base::fail_errno("socket in netns");
    return {};
  });
  if (!r) return tl::unexpected(r.error());
  return fd;
}

}  // namespace mtw::netns
