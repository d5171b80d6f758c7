#include "systemd/journal.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include "base/log.h"
#include "base/unique_fd.h"

namespace mtw::systemd {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

TEST(JournalFields, KeyMapping) {
  EXPECT_EQ(journal_fields("worker started user=alice pid=42 cell=mtw3 host_if=mtw3h netns=mtw3n"),
            (Fields{{"USER", "alice"},
                    {"MTW_PID", "42"},
                    {"CELL", "mtw3"},
                    {"CELL", "mtw3h"},
                    {"CELL", "mtw3n"}}));
  EXPECT_EQ(journal_fields("event kind=user_throttled user_id=7 event=x"),
            (Fields{{"EVENT", "user_throttled"}, {"MTW_USER_ID", "7"}, {"EVENT", "x"}}));
  EXPECT_EQ(journal_fields("x Host-If=a.b up.bps=1 MixedCase=v"),
            (Fields{{"CELL", "a.b"}, {"MTW_UP_BPS", "1"}, {"MTW_MIXEDCASE", "v"}}));
  // Reserved journal fields cannot be set from a message.
  EXPECT_EQ(journal_fields("m message=hi priority=0 _pid=1"),
            (Fields{{"MTW_MESSAGE", "hi"}, {"MTW_PRIORITY", "0"}}));
}

TEST(JournalFields, QuotedValues) {
  EXPECT_EQ(journal_fields(R"(worker not started user=bob reason="cell: no address left" pid=3)"),
            (Fields{{"USER", "bob"}, {"MTW_REASON", "cell: no address left"}, {"MTW_PID", "3"}}));
  EXPECT_EQ(journal_fields(R"(a detail="say \"hi\" \\ \n" b=1)"),
            (Fields{{"MTW_DETAIL", R"(say "hi" \ \n)"}, {"MTW_B", "1"}}));
  EXPECT_EQ(journal_fields(R"(a empty="" b=)"), (Fields{{"MTW_EMPTY", ""}, {"MTW_B", ""}}));
  // Unterminated: the rest of the line.
  EXPECT_EQ(journal_fields(R"(x why="open ended user=eve)"),
            (Fields{{"MTW_WHY", "open ended user=eve"}}));
  // key=value text inside a quoted phrase is not a field.
  EXPECT_EQ(journal_fields(R"(said "user=mallory cell=x" then user=bob)"),
            (Fields{{"USER", "bob"}}));
  // A quoted value keeps newlines (the sink sends it binary-safe).
  EXPECT_EQ(journal_fields("x status=\"line1\nline2\""), (Fields{{"MTW_STATUS", "line1\nline2"}}));
}

TEST(JournalFields, NotFields) {
  EXPECT_EQ(journal_fields(""), Fields{});
  EXPECT_EQ(journal_fields("   \t  "), Fields{});
  EXPECT_EQ(journal_fields("mtwarden started"), Fields{});
  EXPECT_EQ(journal_fields("=x 1a=2 a+b=3 _x=4 é=5 == a"), Fields{});
  EXPECT_EQ(journal_fields("url=http://h/?a=b&c=d"), (Fields{{"MTW_URL", "http://h/?a=b&c=d"}}));
  EXPECT_EQ(journal_fields("trailing user"), Fields{});
  EXPECT_EQ(journal_fields("end user="), (Fields{{"USER", ""}}));
}

TEST(JournalFields, Limits) {
  std::string m = "many";
  for (int i = 0; i < 50; ++i) m += " k" + std::to_string(i) + "=" + std::to_string(i);
  const auto f = journal_fields(m);
  ASSERT_EQ(f.size(), 32u);
  EXPECT_EQ(f.back(), (std::pair<std::string, std::string>{"MTW_K31", "31"}));
  const auto lk = journal_fields("x " + std::string(100, 'k') + "=v");
  ASSERT_EQ(lk.size(), 1u);
  EXPECT_EQ(lk[0].first, "MTW_" + std::string(60, 'K'));
  EXPECT_LE(lk[0].first.size(), 64u) << "journal field names are at most 64 characters";
}

TEST(JournalFields, GarbageNeverCrashesAndKeysAreValid) {
  std::mt19937 rng(12345);
  const std::string alphabet = "ab=\" \\\n\t_-.Zé\x01\xff";
  for (int round = 0; round < 20000; ++round) {
    std::string m;
    const int len = static_cast<int>(rng() % 64);
    for (int i = 0; i < len; ++i) {
      m += (rng() % 4 == 0) ? static_cast<char>(rng() % 256) : alphabet[rng() % alphabet.size()];
    }
    for (const auto& [k, v] : journal_fields(m)) {
      ASSERT_FALSE(k.empty()) << m;
      ASSERT_LE(k.size(), 64u);
      ASSERT_FALSE(k[0] == '_' || (k[0] >= '0' && k[0] <= '9')) << k;
      for (char c : k)
        ASSERT_TRUE((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_') << k;
      ASSERT_LE(v.size(), m.size());
    }
  }
}

TEST(JournalEntry, WhatTheSinkSends) {
  const auto e = journal_entry("mtwarden", "supervisor", spdlog::level::warn,
                               R"(worker exited user=alice pid=9 status="signal 9")");
  EXPECT_EQ(e, (std::vector<std::string>{
                   R"(MESSAGE=worker exited user=alice pid=9 status="signal 9")",
                   "PRIORITY=4",
                   "SYSLOG_IDENTIFIER=mtwarden",
                   "MTW_MODULE=supervisor",
                   "USER=alice",
                   "MTW_PID=9",
                   "MTW_STATUS=signal 9",
               }));
  const std::pair<spdlog::level::level_enum, const char*> prio[] = {
      {spdlog::level::trace, "PRIORITY=7"}, {spdlog::level::debug, "PRIORITY=7"},
      {spdlog::level::info, "PRIORITY=6"},  {spdlog::level::warn, "PRIORITY=4"},
      {spdlog::level::err, "PRIORITY=3"},   {spdlog::level::critical, "PRIORITY=2"},
  };
  for (const auto& [lvl, want] : prio) {
    EXPECT_EQ(journal_entry("x", "m", lvl, "hi")[1], want) << static_cast<int>(lvl);
  }
  EXPECT_EQ(journal_entry("x", "", spdlog::level::info, "hi").size(), 3u) << "no empty MTW_MODULE";
}

TEST(StderrIsJournal, MatchesDeviceAndInodeOfFd2) {
  struct stat st {};
  ASSERT_EQ(::fstat(2, &st), 0);
  const std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  ::setenv("JOURNAL_STREAM", mine.c_str(), 1);
  EXPECT_TRUE(stderr_is_journal());
  for (const std::string& bad :
       {std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1),
        std::to_string(st.st_dev + 1) + ":" + std::to_string(st.st_ino), std::string(""),
        std::string(":"), std::string("1"), mine + "x",
        std::string(":") + std::to_string(st.st_ino), std::to_string(st.st_dev) + ":",
        std::string("-1:-1"), std::string("99999999999999999999999:1")}) {
    ::setenv("JOURNAL_STREAM", bad.c_str(), 1);
    EXPECT_FALSE(stderr_is_journal()) << bad;
  }
  ::unsetenv("JOURNAL_STREAM");
  EXPECT_FALSE(stderr_is_journal());
}

TEST(StderrIsJournal, FollowsWhereFd2Points) {
  char path[] = "/tmp/mtw-journal-stream-XXXXXX";
  base::UniqueFd f(::mkstemp(path));
  ASSERT_TRUE(f.valid());
  struct stat st {};
  ASSERT_EQ(::fstat(f.get(), &st), 0);
  ::setenv("JOURNAL_STREAM", (std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)).c_str(),
           1);
  EXPECT_FALSE(stderr_is_journal());
  base::UniqueFd saved(::fcntl(2, F_DUPFD_CLOEXEC, 10));
  ASSERT_TRUE(saved.valid());
  ASSERT_EQ(::dup2(f.get(), 2), 2);
  const bool now = stderr_is_journal();
  ASSERT_EQ(::dup2(saved.get(), 2), 2);
  EXPECT_TRUE(now);
  ::unsetenv("JOURNAL_STREAM");
  ::unlink(path);
}

TEST(LogSink, RoutesExistingAndFutureLoggers) {
  auto before = base::logger("journal-test-old");
  std::ostringstream out;
  base::use_log_sink(std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  before->info("from the old logger user=a");
  base::logger("journal-test-new")->warn("from a new logger user=b");
  base::use_log_sink(nullptr);  // back to stderr
  before->info("to stderr again");
  const std::string text = out.str();
  EXPECT_NE(text.find("[journal-test-old] from the old logger user=a"), std::string::npos) << text;
  EXPECT_NE(text.find("[journal-test-new] from a new logger user=b"), std::string::npos) << text;
  EXPECT_EQ(text.find("to stderr again"), std::string::npos) << text;
}

// Parses native journal protocol datagrams: "KEY=value\n" or, binary-safe,
// "KEY\n<le64 size><bytes>\n". Empty on a malformed datagram.
std::vector<std::pair<std::string, std::string>> parse_native(const std::string& d) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t i = 0;
  while (i < d.size()) {
    const auto nl = d.find('\n', i);
    if (nl == std::string::npos) return {};
    const std::string line = d.substr(i, nl - i);
    const auto eq = line.find('=');
    if (eq != std::string::npos) {
      out.emplace_back(line.substr(0, eq), line.substr(eq + 1));
      i = nl + 1;
      continue;
    }
    if (nl + 9 > d.size()) return {};
    std::uint64_t n = 0;
    for (int b = 7; b >= 0; --b) n = (n << 8) | static_cast<unsigned char>(d[nl + 1 + b]);
    if (nl + 9 + n + 1 > d.size() || d[nl + 9 + n] != '\n') return {};
    out.emplace_back(line, d.substr(nl + 9, n));
    i = nl + 9 + n + 1;
  }
  return out;
}

std::string value_of(const std::vector<std::pair<std::string, std::string>>& f,
                     const std::string& k) {
  for (const auto& [key, v] : f) {
    if (key == k) return v;
  }
  return "<absent>";
}

// The child half of the sink test: a private mount namespace with a tmpfs on
// /run, a datagram socket at /run/systemd/journal/socket (where
// sd_journal_sendv() writes), two log lines through the sink; the datagrams go
// back over `out` as <u32 length><bytes>. Exit 77: no namespace for us.
[[noreturn]] void journal_child(int out) {
  if (::unshare(CLONE_NEWNS) != 0) {
    const uid_t uid = ::getuid();
    const gid_t gid = ::getgid();
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) ::_exit(77);
    auto put = [](const char* path, const std::string& text) {
      base::UniqueFd f(::open(path, O_WRONLY | O_CLOEXEC));
      return f.valid() &&
             ::write(f.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size());
    };
    if (!put("/proc/self/setgroups", "deny") ||
        !put("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1") ||
        !put("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1")) {
      ::_exit(77);
    }
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ::_exit(77);
  if (::mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") != 0) ::_exit(77);
  if (::mkdir("/run/systemd", 0755) != 0 || ::mkdir("/run/systemd/journal", 0755) != 0) ::_exit(3);
  base::UniqueFd s(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strcpy(sa.sun_path, "/run/systemd/journal/socket");
  if (!s.valid() || ::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) ::_exit(4);
  const int big = 1 << 21;  // room for the large entry without a memfd
  (void)::setsockopt(s.get(), SOL_SOCKET, SO_RCVBUF, &big, sizeof big);

  base::use_log_sink(make_journal_sink("mtwarden-test"));
  base::logger("journal-test")
      ->warn("worker exited user=alice cell=mtt1 status=\"exit 3\nthen more\"");
  base::logger("journal-test")->info("large line size={} {}", 300000, std::string(300000, 'x'));
  base::use_log_sink(nullptr);
  for (int i = 0; i < 2; ++i) {
    pollfd p{s.get(), POLLIN, 0};
    if (::poll(&p, 1, 2000) != 1) ::_exit(5);
    std::string buf(1 << 20, '\0');
    iovec iov{buf.data(), buf.size()};
    char ctl[CMSG_SPACE(sizeof(int))];
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl;
    m.msg_controllen = sizeof ctl;
    const ssize_t n = ::recvmsg(s.get(), &m, MSG_CMSG_CLOEXEC);
    if (n < 0) ::_exit(6);
    buf.resize(static_cast<std::size_t>(n));
    // Entries too large for a datagram come as a sealed memfd (SCM_RIGHTS).
    if (cmsghdr* c = CMSG_FIRSTHDR(&m); n == 0 && c && c->cmsg_type == SCM_RIGHTS) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
      base::UniqueFd memfd(fd);
      struct stat st {};
      if (::fstat(fd, &st) != 0) ::_exit(7);
      buf.assign(static_cast<std::size_t>(st.st_size), '\0');
      if (::pread(fd, buf.data(), buf.size(), 0) != st.st_size) ::_exit(8);
    }
    const auto len = static_cast<std::uint32_t>(buf.size());
    if (::write(out, &len, sizeof len) != sizeof len ||
        ::write(out, buf.data(), buf.size()) != static_cast<ssize_t>(buf.size())) {
      ::_exit(9);
    }
  }
  ::_exit(0);
}

std::string read_exact(int fd, std::size_t n) {
  std::string s(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd, s.data() + got, n - got);
    if (r <= 0) return s.substr(0, got);
    got += static_cast<std::size_t>(r);
  }
  return s;
}

TEST(JournalSink, SendsNativeEntriesToTheJournalSocket) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  base::UniqueFd rd(p[0]), wr(p[1]);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) journal_child(wr.get());
  wr.reset();
  std::vector<std::string> datagrams;
  for (;;) {
    const std::string len = read_exact(rd.get(), 4);
    if (len.size() != 4) break;
    std::uint32_t n = 0;
    std::memcpy(&n, len.data(), 4);
    datagrams.push_back(read_exact(rd.get(), n));
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "no mount namespace for a private /run";
  ASSERT_EQ(WEXITSTATUS(status), 0);
  ASSERT_EQ(datagrams.size(), 2u);

  const auto a = parse_native(datagrams[0]);
  EXPECT_EQ(value_of(a, "MESSAGE"),
            "worker exited user=alice cell=mtt1 status=\"exit 3\nthen more\"");
  EXPECT_EQ(value_of(a, "PRIORITY"), "4");
  EXPECT_EQ(value_of(a, "SYSLOG_IDENTIFIER"), "mtwarden-test");
  EXPECT_EQ(value_of(a, "MTW_MODULE"), "journal-test");
  EXPECT_EQ(value_of(a, "USER"), "alice");
  EXPECT_EQ(value_of(a, "CELL"), "mtt1");
  EXPECT_EQ(value_of(a, "MTW_STATUS"), "exit 3\nthen more");
  EXPECT_NE(datagrams[0].find("MESSAGE\n"), std::string::npos)
      << "a multi-line value goes binary-safe";

  const auto b = parse_native(datagrams[1]);
  EXPECT_EQ(value_of(b, "MTW_SIZE"), "300000");
  EXPECT_EQ(value_of(b, "PRIORITY"), "6");
  EXPECT_EQ(value_of(b, "MESSAGE").size(), std::string("large line size=300000 ").size() + 300000);
}

}  // namespace
}  // namespace mtw::systemd
