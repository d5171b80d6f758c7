#include "conn/syscall_filter.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <string>
#include <thread>

namespace mtw::conn {
namespace {

const DeniedCall* find(const std::vector<DeniedCall>& list, const std::string& name) {
  for (const auto& d : list) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

TEST(SyscallDenyList, NamesEveryFamilyOfTheIssue) {
  const auto list = syscall_deny_list();
  for (const char* name : {"unshare", "setns", "clone", "clone3", "mount", "umount2", "pivot_root",
                           "ptrace", "bpf", "keyctl", "perf_event_open"}) {
    EXPECT_NE(find(list, name), nullptr) << name;
  }
}

TEST(SyscallDenyList, EveryNameIsKnownToLibseccomp) {
  // A typo would silently leave a call allowed (install skips names that
  // resolve to no call of this architecture).
  for (const auto& d : syscall_deny_list()) {
#if defined(__x86_64__)
    EXPECT_GE(seccomp_syscall_resolve_name(d.name), 0) << d.name;
#else
    EXPECT_NE(seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, d.name), __NR_SCMP_ERROR)
        << d.name;
#endif
  }
}

TEST(SyscallDenyList, NoCallListedTwice) {
  std::set<std::string> seen;
  for (const auto& d : syscall_deny_list()) EXPECT_TRUE(seen.insert(d.name).second) << d.name;
}

TEST(SyscallDenyList, CloneIsDeniedOnlyWithNamespaceFlags) {
  const auto list = syscall_deny_list();
  const auto* clone = find(list, "clone");
  ASSERT_NE(clone, nullptr);
  for (std::uint64_t f : {CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWPID, CLONE_NEWIPC,
                          CLONE_NEWUTS, CLONE_NEWCGROUP}) {
    EXPECT_NE(clone->arg0_bits & f, 0u) << std::hex << f;
  }
  // Threads and fork must pass: their flags, and the exit signal byte.
  const std::uint64_t thread_flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND |
                                     CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS |
                                     CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | CSIGNAL;
  EXPECT_EQ(clone->arg0_bits & thread_flags, 0u);
}

TEST(SyscallDenyList, Clone3FailsWithEnosysSoGlibcFallsBackToClone) {
  const auto list = syscall_deny_list();
  ASSERT_NE(find(list, "clone3"), nullptr);
  EXPECT_EQ(find(list, "clone3")->err, ENOSYS);
  for (const auto& d : list) {
    if (std::string(d.name) != "clone3") {
      EXPECT_EQ(d.err, EPERM) << d.name;
    }
  }
}

// The filter is for life, so it goes into a forked child; the child reports
// through its exit status (one bit per failed expectation).
int in_filtered_child(int (*body)()) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(body());
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200 + WTERMSIG(status);
}

TEST(SyscallFilter, DeniedCallFailsWithEpermAndIsCounted) {
  const int r = in_filtered_child([] {
    if (!install_syscall_filter()) return 100;
    int bad = 0;
    if (denied_syscalls() != 0) bad |= 1;
    errno = 0;
    if (::syscall(SYS_unshare, CLONE_NEWUSER) != -1 || errno != EPERM) bad |= 2;
    errno = 0;
    if (::syscall(SYS_setns, -1, 0) != -1 || errno != EPERM) bad |= 4;
    if (denied_syscalls() != 2) bad |= 8;
    return bad;
  });
  EXPECT_EQ(r, 0);
}

TEST(SyscallFilter, ThreadsAndForkStillWork) {
  const int r = in_filtered_child([] {
    if (!install_syscall_filter()) return 100;
    int bad = 0;
    bool ran = false;
    try {
      std::thread([&] { ran = true; }).join();
    } catch (...) {
      bad |= 1;
    }
    if (!ran) bad |= 2;
    const pid_t child = ::fork();
    if (child == 0) ::_exit(7);
    int status = 0;
    if (child < 0 || ::waitpid(child, &status, 0) != child || WEXITSTATUS(status) != 7) bad |= 4;
    if (denied_syscalls() != 0) bad |= 8;
    return bad;
  });
  EXPECT_EQ(r, 0);
}

TEST(SyscallFilter, CloneWithANamespaceFlagIsDenied) {
  const int r = in_filtered_child([] {
    if (!install_syscall_filter()) return 100;
    errno = 0;
    const long pid = ::syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) ::_exit(0);
    return pid == -1 && errno == EPERM && denied_syscalls() == 1 ? 0 : 1;
  });
  EXPECT_EQ(r, 0);
}

TEST(ConfinementCheck, EveryProbeIsRefusedAndTheReportSaysOk) {
  const int r = in_filtered_child([] {
    auto rep = run_confinement_check();
    if (!rep) return 100;
    const std::string text = format_confinement_report(*rep);
    int bad = 0;
    if (!rep->ok()) bad |= 1;
    if (text.find("denied unshare errno=EPERM") == std::string::npos) bad |= 2;
    if (text.find("denied clone3 errno=ENOSYS") == std::string::npos) bad |= 4;
    if (!text.ends_with("ok\n")) bad |= 8;
    return bad;
  });
  EXPECT_EQ(r, 0);
}

TEST(ConfinementCheck, ReportFailsWhenACallWasAllowed) {
  ConfinementReport rep;
  rep.threads_start = true;
  rep.probes.push_back(ProbeResult{"unshare", 0, false, false, ""});
  EXPECT_FALSE(rep.ok());
  EXPECT_NE(format_confinement_report(rep).find("ALLOWED unshare errno=0"), std::string::npos);
  rep.probes[0] = ProbeResult{"unshare", EPERM, true, false, ""};
  EXPECT_TRUE(rep.ok());
  rep.threads_start = false;
  EXPECT_FALSE(rep.ok());
}

}  // namespace
}  // namespace mtw::conn
