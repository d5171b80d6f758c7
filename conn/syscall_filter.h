// The seccomp filter of the worker and the gate (libseccomp): a deny list of
// the system calls that would let a compromised relay leave its confinement
// or attack the kernel (namespaces, mounts, ptrace, bpf, keys, perf, module
// and kexec loading, ...). Everything else is allowed; docs/security.md says
// why it is a deny list and not an allow list.
//
// A denied call fails with EPERM and is counted: the filter returns
// SECCOMP_RET_TRAP and our SIGSYS handler writes -EPERM into the trapped
// call's return register and bumps a process-wide atomic counter
// (x86_64 and aarch64; elsewhere the filter returns EPERM itself, uncounted).
// clone3 is the exception: its flags live in memory, out of the filter's
// reach, so it fails with ENOSYS (not counted), which makes glibc fall back
// to clone, whose flags the filter does see.
//
// Thread-safety: install_syscall_filter() once, before other threads start
// (the filter is inherited by threads created later; SECCOMP_FILTER_FLAG_TSYNC
// covers any that exist). denied_syscalls() is safe from any thread.
#pragma once

#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"

namespace mtw::conn {

// One entry of the deny list.
struct DeniedCall {
  const char* name;             // the system call's name as libseccomp knows it
  std::uint64_t arg0_bits = 0;  // != 0: denied only when arg0 has any of these bits set
  int err = EPERM;              // EPERM (trapped and counted) or ENOSYS (clone3, uncounted)
  const char* why = "";         // the family, for docs and the diagnostic output
};

// The policy, in the order it is installed. Pure: no system call.
std::vector<DeniedCall> syscall_deny_list();

// Installs the SIGSYS handler and the filter for this process (all its
// threads). Sets no_new_privs (already set under the supervisor).
// Errors: kSyscall naming libseccomp's failing step, with its errno.
[[nodiscard]] base::Result<void> install_syscall_filter();

// Denied calls trapped since the filter was installed.
std::uint64_t denied_syscalls() noexcept;

// The operator's check (mtwarden-worker --confinement-check): installs the
// filter, then makes each probe call with arguments that are harmless even if
// the filter were absent, and reports per call whether the filter refused it.
struct ProbeResult {
  std::string name;
  int err = 0;           // errno of the call (0: it succeeded)
  bool denied = false;   // refused by the filter (EPERM and counted, or clone3's ENOSYS)
  bool skipped = false;  // not denied in this build (see the note)
  std::string note;
};
struct ConfinementReport {
  std::vector<ProbeResult> probes;
  bool threads_start = false;  // a std::thread started and joined under the filter
  int thread_error = 0;
  std::uint64_t denied_total = 0;
  // Every probe denied (or skipped in this build) and threads start.
  bool ok() const noexcept;
};
[[nodiscard]] base::Result<ConfinementReport> run_confinement_check();
// One line per probe, "denied unshare errno=EPERM", "ALLOWED ...", "skipped
// ...", then the thread line and "seccomp_denied=N", then "ok" or "FAILED".
std::string format_confinement_report(const ConfinementReport& r);

}  // namespace mtw::conn
