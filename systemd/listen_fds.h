// Socket activation (sd_listen_fds(3)): mtwarden.socket may hand the public
// listeners to the supervisor. Each configured listener takes the passed
// socket bound to its address; a configured listener without one is bound
// as usual; a passed socket no listener claims is reported and closed.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "proto/dc_table.h"

namespace mtw::systemd {

class ListenFds {
 public:
  // Takes the sockets passed by the service manager ($LISTEN_FDS for this
  // pid; the variables are then unset). Empty when not socket-activated.
  static ListenFds take();
  // For tests: adopt these descriptors as if passed.
  explicit ListenFds(std::vector<base::UniqueFd> fds) : fds_(std::move(fds)) {}
  ListenFds() = default;

  bool empty() const noexcept { return fds_.empty(); }
  // The passed listening TCP socket bound to exactly `ep` ("::" and
  // "0.0.0.0" match only themselves), removed from the set; nullopt if none.
  // kBadInput when a socket bound there is not a listening SOCK_STREAM.
  base::Result<std::optional<base::UniqueFd>> claim(const proto::Endpoint& ep);
  // The sockets nobody claimed, described ("[::]:8443", "unix:/x", "fd 5"),
  // then closed.
  std::vector<std::string> release_unclaimed();

 private:
  std::vector<base::UniqueFd> fds_;
};

}  // namespace mtw::systemd
