#include "ipc/reattach_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace mtw::ipc {
namespace {

using base::Errc;
using base::fail;
using base::fail_errno;

base::Result<sockaddr_un> unix_address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  // Room for the NUL: abstract addresses (leading NUL) are not files and
  // have no mode, so they are not accepted either.
  if (path.empty() || path.front() == '\0' || path.size() >= sizeof a.sun_path ||
      path.find('\0') != std::string::npos)
    return fail(Errc::kBadInput, "re-attach socket path empty or too long: " + path);
  std::memcpy(a.sun_path, path.data(), path.size());
  return a;
}

}  // namespace

base::Result<PeerCred> peer_cred(int fd) {
  ucred c{};
  socklen_t len = sizeof c;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) != 0)
    return fail_errno("getsockopt(SO_PEERCRED)");
  return PeerCred{c.pid, c.uid, c.gid};
}

base::Result<void> check_reattach_listener(int fd) {
  int type = 0, listening = 0;
  sockaddr_storage local{};
  socklen_t len = sizeof type, len2 = sizeof listening, len3 = sizeof local;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
      ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len2) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len3) != 0)
    return fail_errno("fd " + std::to_string(fd) + " is not a socket");
  if (local.ss_family != AF_UNIX || type != SOCK_SEQPACKET)
    return fail(Errc::kBadInput,
                "fd " + std::to_string(fd) + " is not an AF_UNIX SOCK_SEQPACKET socket");
  if (!listening) return fail(Errc::kBadInput, "fd " + std::to_string(fd) + " is not listening");
  return {};
}

base::Result<base::UniqueFd> listen_reattach(const std::string& path) {
  auto addr = unix_address(path);
  if (!addr) return tl::unexpected(addr.error());
  base::UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) return fail_errno("socket(AF_UNIX, SOCK_SEQPACKET)");
  // A socket file outlives its listener: the previous worker's, or ours
  // from before a restart. Nobody accepts on it any more once we get here.
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return fail_errno("unlink " + path);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0)
    return fail_errno("bind " + path);
  // Before listen(): until then every connect is refused, so nobody slips
  // in while the mode is still the umask's. (Not umask(): process-wide.)
  if (::chmod(path.c_str(), 0600) != 0) return fail_errno("chmod 0600 " + path);
  if (::listen(fd.get(), 4) != 0) return fail_errno("listen " + path);
  return fd;
}

base::Result<base::UniqueFd> connect_reattach(const std::string& path) {
  auto addr = unix_address(path);
  if (!addr) return tl::unexpected(addr.error());
  base::UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) return fail_errno("socket(AF_UNIX, SOCK_SEQPACKET)");
  int r;
  do r = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr);
  while (r != 0 && errno == EINTR);
  if (r != 0) {
    const int err = errno;
    if (err == ECONNREFUSED || err == ENOENT)
      return base::Result<base::UniqueFd>(
          tl::unexpected(base::Error{Errc::kNotFound, err, "no worker listens at " + path}));
    return fail_errno("connect " + path, err);
  }
  return fd;
}

}  // namespace mtw::ipc
