// Netlink plumbing shared by the netns/ modules: an owning libnl route
// socket, libnl-error -> Error mapping, and a way to run a short function in
// another network namespace on a throw-away thread.
// Thread-safety: an NlSocket is used by one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "base/error.h"
#include "base/unique_fd.h"

struct nl_sock;

namespace mtw::netns {

// Owns one connected NETLINK_ROUTE libnl socket, bound to the network
// namespace of the thread that connected it. Move-only.
class NlSocket {
 public:
  NlSocket() = default;
  NlSocket(NlSocket&& o) noexcept;
  NlSocket& operator=(NlSocket&& o) noexcept;
  NlSocket(const NlSocket&) = delete;
  ~NlSocket();

  // Connects in the calling thread's network namespace.
  [[nodiscard]] static base::Result<NlSocket> connect();
  // Connects inside the namespace `netns_fd` (see in_netns): the socket stays
  // bound there, so later calls from any thread act on that namespace.
  [[nodiscard]] static base::Result<NlSocket> connect_in(int netns_fd);

  nl_sock* get() const noexcept { return sk_; }

 private:
  explicit NlSocket(nl_sock* sk) noexcept : sk_(sk) {}
  nl_sock* sk_ = nullptr;
};

// Maps a negative libnl return code to an Error: NLE_PERM/NLE_NOACCESS ->
// kPermission ("CAP_NET_ADMIN required"), NLE_EXIST -> kExists,
// NLE_NODEV/NLE_OBJ_NOTFOUND -> kNotFound, anything else kNetlink. sys_errno
// carries the matching errno where one exists.
base::Error nl_error(int nl_err, std::string context);

// True for libnl codes that mean "already gone" (teardown treats as success).
bool nl_is_gone(int nl_err) noexcept;

// Runs `fn` on a new thread that first joins the network namespace
// `netns_fd` (setns), then exits: the calling thread (maybe an event-loop
// thread) never changes namespace. Returns fn's result, or the setns error.
[[nodiscard]] base::Result<void> in_netns(int netns_fd,
                                          const std::function<base::Result<void>()>& fn);
// How many in_netns calls (threads entering a namespace) this process made:
// each costs a thread (~50 us), so hot paths are checked to make none.
std::uint64_t in_netns_calls() noexcept;

// A socket(domain, type|SOCK_CLOEXEC, proto) that lives in namespace
// `netns_fd`: e.g. to connect from inside a cell, or listen in a test's DC.
[[nodiscard]] base::Result<base::UniqueFd> socket_in(int netns_fd, int domain, int type,
                                                     int proto = 0);

}  // namespace mtw::netns
