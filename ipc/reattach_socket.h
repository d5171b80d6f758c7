// The re-attach socket of a managed worker that may outlive its supervisor
// (mtwarden-worker --reattach-fd; docs/worker-control.md, "Surviving the
// supervisor"): a listening AF_UNIX SOCK_SEQPACKET socket at a path the
// parent chose, which the worker only accepts on, and over which a new
// controller speaks the control protocol. Both sides' plain syscalls live
// here: the parent's listen (before the spawn) and connect (to re-adopt),
// and the peer credentials both sides judge each other by.
// Thread-safe as far as the kernel is; no shared state.
#pragma once

#include <sys/types.h>

#include <string>

#include "base/error.h"
#include "base/unique_fd.h"

namespace mtw::ipc {

struct PeerCred {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

// SO_PEERCRED of a connected AF_UNIX socket: the peer at connect() time, or
// for a socketpair whoever made the pair. kSyscall when getsockopt fails.
[[nodiscard]] base::Result<PeerCred> peer_cred(int fd);

// Whether `fd` is a listening AF_UNIX SOCK_SEQPACKET socket (what a worker
// is given as --reattach-fd). kBadInput naming what it is not; kSyscall when
// it is no socket at all.
[[nodiscard]] base::Result<void> check_reattach_listener(int fd);

// A listening SOCK_SEQPACKET socket bound at `path` (mode 0600: only its
// owner, root under the supervisor, may connect; a stale file there is
// removed first), CLOEXEC, with a backlog of 4. For the parent, before the
// spawn; it closes its copy once the worker holds one, so that a dead
// worker's path refuses connects. kBadInput for a path that does not fit
// sun_path, kSyscall naming the failing step.
[[nodiscard]] base::Result<base::UniqueFd> listen_reattach(const std::string& path);

// Connects a SOCK_SEQPACKET socket (CLOEXEC) to `path`. kNotFound when no
// worker listens there any more (ECONNREFUSED, or no such file): the worker
// is gone. kBadInput for a path that does not fit; other errors kSyscall.
[[nodiscard]] base::Result<base::UniqueFd> connect_reattach(const std::string& path);

}  // namespace mtw::ipc
