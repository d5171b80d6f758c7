#include "conn/syscall_filter.h"

#include <linux/sched.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <system_error>
#include <thread>

namespace mtw::conn {
namespace {

// LeakSanitizer stops the world at exit by ptrace-attaching to the
// process's own threads; with ptrace denied every sanitizer build would die
// there. Those builds (tests only) keep ptrace; the uid is the process's own
// anyway, so it reaches nobody else.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitizerBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
constexpr bool kSanitizerBuild = true;
#else
constexpr bool kSanitizerBuild = false;
#endif
#else
constexpr bool kSanitizerBuild = false;
#endif

#if defined(__x86_64__) || defined(__aarch64__)
constexpr bool kCounted = true;
#else
constexpr bool kCounted = false;
#endif

// si_code of a seccomp trap (the kernel's SYS_SECCOMP; glibc hides it
// behind feature macros that vary by version).
constexpr int kSiCodeSeccomp = 1;

std::atomic<std::uint64_t> g_denied{0};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "the SIGSYS handler needs it");

// SECCOMP_RET_TRAP delivers SIGSYS to the calling thread with the call not
// made; what we leave in the return register is what the call returns.
void on_sigsys(int, siginfo_t* si, void* ctx) {
  if (si->si_code != kSiCodeSeccomp) return;  // a SIGSYS sent by kill(): nothing to fix up
  auto* uc = static_cast<ucontext_t*>(ctx);
#if defined(__x86_64__)
  uc->uc_mcontext.gregs[REG_RAX] = -EPERM;
#elif defined(__aarch64__)
  uc->uc_mcontext.regs[0] = static_cast<unsigned long long>(-EPERM);
#else
  (void)uc;
#endif
  g_denied.fetch_add(1, std::memory_order_relaxed);
}

bool exempt_in_this_build(const DeniedCall& d) {
  return kSanitizerBuild && std::string_view(d.name) == "ptrace";
}

base::Error seccomp_error(const char* step, int rc) {
  return base::Error{base::Errc::kSyscall, -rc, std::string("seccomp: ") + step + " failed"};
}

}  // namespace

std::vector<DeniedCall> syscall_deny_list() {
  // CLONE_NEWTIME is left out of clone's bits: in clone's flags that bit
  // belongs to the exit signal byte (it is an unshare/clone3 flag only).
  constexpr std::uint64_t kNamespaceBits = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS |
                                           CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
                                           CLONE_NEWNET;
  const char* ns = "namespaces";
  const char* mnt = "mounts";
  const char* dbg = "other processes' memory";
  const char* kern = "kernel attack surface";
  const char* adm = "system administration";
  return {
      {"unshare", 0, EPERM, ns},
      {"setns", 0, EPERM, ns},
      {"clone", kNamespaceBits, EPERM, ns},
      {"clone3", 0, ENOSYS, ns},
      {"mount", 0, EPERM, mnt},
      {"umount2", 0, EPERM, mnt},
      {"pivot_root", 0, EPERM, mnt},
      {"chroot", 0, EPERM, mnt},
      {"open_tree", 0, EPERM, mnt},
      {"move_mount", 0, EPERM, mnt},
      {"fsopen", 0, EPERM, mnt},
      {"fsconfig", 0, EPERM, mnt},
      {"fsmount", 0, EPERM, mnt},
      {"fspick", 0, EPERM, mnt},
      {"mount_setattr", 0, EPERM, mnt},
      {"ptrace", 0, EPERM, dbg},
      {"process_vm_readv", 0, EPERM, dbg},
      {"process_vm_writev", 0, EPERM, dbg},
      {"pidfd_getfd", 0, EPERM, dbg},
      {"kcmp", 0, EPERM, dbg},
      {"bpf", 0, EPERM, kern},
      {"keyctl", 0, EPERM, kern},
      {"add_key", 0, EPERM, kern},
      {"request_key", 0, EPERM, kern},
      {"perf_event_open", 0, EPERM, kern},
      {"userfaultfd", 0, EPERM, kern},
      {"io_uring_setup", 0, EPERM, kern},
      {"io_uring_enter", 0, EPERM, kern},
      {"io_uring_register", 0, EPERM, kern},
      {"fanotify_init", 0, EPERM, kern},
      {"name_to_handle_at", 0, EPERM, kern},
      {"open_by_handle_at", 0, EPERM, kern},
      {"init_module", 0, EPERM, adm},
      {"finit_module", 0, EPERM, adm},
      {"delete_module", 0, EPERM, adm},
      {"kexec_load", 0, EPERM, adm},
      {"kexec_file_load", 0, EPERM, adm},
      {"reboot", 0, EPERM, adm},
      {"swapon", 0, EPERM, adm},
      {"swapoff", 0, EPERM, adm},
      {"acct", 0, EPERM, adm},
      {"quotactl", 0, EPERM, adm},
      {"syslog", 0, EPERM, adm},
      {"vhangup", 0, EPERM, adm},
      {"settimeofday", 0, EPERM, adm},
      {"clock_settime", 0, EPERM, adm},
      {"clock_adjtime", 0, EPERM, adm},
      {"adjtimex", 0, EPERM, adm},
      {"sethostname", 0, EPERM, adm},
      {"setdomainname", 0, EPERM, adm},
      {"iopl", 0, EPERM, adm},
      {"ioperm", 0, EPERM, adm},
  };
}

base::Result<void> install_syscall_filter() {
  struct sigaction sa {};
  sa.sa_sigaction = on_sigsys;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (::sigaction(SIGSYS, &sa, nullptr) != 0) return base::fail_errno("sigaction(SIGSYS)");
  // Threads with SIGSYS blocked (Asio's resolver thread blocks every
  // signal) cannot run the handler: the kernel then kills the process, which
  // still fails closed. None of them makes a denied call.
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return base::fail(base::Errc::kSyscall, "seccomp: init failed");
  struct Release {
    scmp_filter_ctx c;
    ~Release() { seccomp_release(c); }
  } release{ctx};
  if (int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1); rc != 0) {
    return tl::unexpected(seccomp_error("attr TSYNC", rc));
  }
  const std::uint32_t trap = kCounted ? SCMP_ACT_TRAP : SCMP_ACT_ERRNO(EPERM);
  for (const DeniedCall& d : syscall_deny_list()) {
    if (exempt_in_this_build(d)) continue;
    const int nr = seccomp_syscall_resolve_name(d.name);
    if (nr < 0) continue;  // not a call of this architecture (iopl on aarch64, say)
    const std::uint32_t action =
        d.err == EPERM ? trap : SCMP_ACT_ERRNO(static_cast<unsigned>(d.err));
    if (d.arg0_bits == 0) {
      if (int rc = seccomp_rule_add(ctx, action, nr, 0); rc != 0) {
        return tl::unexpected(seccomp_error(d.name, rc));
      }
      continue;
    }
    // One rule per bit: the rules of a call are OR-ed, so any bit denies.
    for (std::uint64_t bit = 1; bit != 0; bit <<= 1) {
      if ((d.arg0_bits & bit) == 0) continue;
      if (int rc = seccomp_rule_add(ctx, action, nr, 1, SCMP_A0(SCMP_CMP_MASKED_EQ, bit, bit));
          rc != 0) {
        return tl::unexpected(seccomp_error(d.name, rc));
      }
    }
  }
  if (int rc = seccomp_load(ctx); rc != 0) return tl::unexpected(seccomp_error("load", rc));
  return {};
}

std::uint64_t denied_syscalls() noexcept { return g_denied.load(std::memory_order_relaxed); }

namespace {

struct Probe {
  const char* name;
  long (*call)();
};

// Arguments chosen so that each call is harmless even without the filter
// (bad pointers, bad flags, pid 0, fd -1); clone's child exits at once.
long probe_clone() {
  long r = ::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
  if (r == 0) ::_exit(0);
  if (r > 0) ::waitpid(static_cast<pid_t>(r), nullptr, 0);
  return r > 0 ? 0 : r;
}

const Probe kProbes[] = {
    {"unshare", [] { return ::syscall(SYS_unshare, CLONE_NEWUSER | CLONE_NEWNET); }},
    {"clone", probe_clone},
    {"clone3", [] { return ::syscall(SYS_clone3, nullptr, 0); }},
    {"setns", [] { return ::syscall(SYS_setns, -1, CLONE_NEWNET); }},
    {"mount", [] { return ::syscall(SYS_mount, nullptr, nullptr, nullptr, 0, nullptr); }},
    {"umount2", [] { return ::syscall(SYS_umount2, nullptr, 0); }},
    {"pivot_root", [] { return ::syscall(SYS_pivot_root, nullptr, nullptr); }},
    {"chroot", [] { return ::syscall(SYS_chroot, nullptr); }},
    {"fsopen", [] { return ::syscall(SYS_fsopen, nullptr, 0); }},
    {"ptrace", [] { return ::syscall(SYS_ptrace, PTRACE_ATTACH, 0, nullptr, nullptr); }},
    {"process_vm_readv",
     [] { return ::syscall(SYS_process_vm_readv, 0, nullptr, 0, nullptr, 0, 0); }},
    {"bpf", [] { return ::syscall(SYS_bpf, -1, nullptr, 0); }},
    {"keyctl", [] { return ::syscall(SYS_keyctl, -1, 0, 0, 0, 0); }},
    {"add_key", [] { return ::syscall(SYS_add_key, nullptr, nullptr, nullptr, 0, 0); }},
    {"perf_event_open", [] { return ::syscall(SYS_perf_event_open, nullptr, 0, -1, -1, 0); }},
    {"userfaultfd", [] { return ::syscall(SYS_userfaultfd, -1); }},
    {"io_uring_setup", [] { return ::syscall(SYS_io_uring_setup, 0, nullptr); }},
    {"open_by_handle_at", [] { return ::syscall(SYS_open_by_handle_at, -1, nullptr, 0); }},
    {"init_module", [] { return ::syscall(SYS_init_module, nullptr, 0, nullptr); }},
    {"kexec_load", [] { return ::syscall(SYS_kexec_load, 0, 0, nullptr, ~0UL); }},
    {"reboot", [] { return ::syscall(SYS_reboot, 0, 0, 0, nullptr); }},
    {"sethostname", [] { return ::syscall(SYS_sethostname, nullptr, 1L << 20); }},
};

}  // namespace

base::Result<ConfinementReport> run_confinement_check() {
  if (auto r = install_syscall_filter(); !r) return tl::unexpected(r.error());
  const auto policy = syscall_deny_list();
  ConfinementReport rep;
  for (const Probe& p : kProbes) {
    ProbeResult res;
    res.name = p.name;
    const DeniedCall* d = nullptr;
    for (const auto& c : policy) {
      if (std::string_view(c.name) == p.name) d = &c;
    }
    if (d != nullptr && exempt_in_this_build(*d)) {
      res.skipped = true;
      res.note = "allowed in sanitizer builds (LeakSanitizer attaches to its own threads)";
      rep.probes.push_back(std::move(res));
      continue;
    }
    const std::uint64_t before = denied_syscalls();
    errno = 0;
    const long rc = p.call();
    res.err = rc < 0 ? errno : 0;
    const bool counted = denied_syscalls() == before + 1;
    if (d != nullptr && d->err == ENOSYS) {
      // The kernel answers EINVAL for these arguments: ENOSYS is the filter.
      res.denied = res.err == ENOSYS && !counted;
      res.note = "not counted; glibc falls back to clone";
    } else {
      res.denied = res.err == EPERM && (counted || !kCounted);
    }
    rep.probes.push_back(std::move(res));
  }
  // Threads must still start: glibc tries clone3 first, then clone.
  try {
    std::thread([] {}).join();
    rep.threads_start = true;
  } catch (const std::system_error& e) {
    rep.thread_error = e.code().value();
  }
  rep.denied_total = denied_syscalls();
  return rep;
}

std::string format_confinement_report(const ConfinementReport& r) {
  auto errno_name = [](int e) -> std::string {
    if (e == 0) return "0";
    const char* n = ::strerrorname_np(e);
    return n != nullptr ? n : std::to_string(e);
  };
  std::string s;
  for (const auto& p : r.probes) {
    s += p.skipped ? "skipped " : p.denied ? "denied " : "ALLOWED ";
    s += p.name;
    if (!p.skipped) s += " errno=" + errno_name(p.err);
    if (!p.note.empty()) s += " (" + p.note + ")";
    s += '\n';
  }
  s += r.threads_start ? "threads start\n"
                       : "THREADS FAIL errno=" + errno_name(r.thread_error) + "\n";
  s += "seccomp_denied=" + std::to_string(r.denied_total) + "\n";
  s += r.ok() ? "ok\n" : "FAILED\n";
  return s;
}

bool ConfinementReport::ok() const noexcept {
  for (const auto& p : probes) {
    if (!p.denied && !p.skipped) return false;
  }
  return threads_start && !probes.empty();
}

}  // namespace mtw::conn
