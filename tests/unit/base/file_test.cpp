// write_file_atomic (base/file.h): content, exact mode whatever the umask,
// replacement, a failure that leaves the old file and no temporary, and a
// writer killed mid-write that leaves no file at all.
#include "base/file.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/unique_fd.h"

namespace mtw::base {
namespace {
namespace fs = std::filesystem;

class WriteFileAtomic : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mtw-file-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string read(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  static unsigned mode_of(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 ? st.st_mode & 07777 : ~0u;
  }
  std::size_t entries() const {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir_), {}));
  }

  std::string dir_;
};

TEST_F(WriteFileAtomic, WritesExactModeDespiteUmask) {
  const std::string p = dir_ + "/a";
  const mode_t old = ::umask(077);
  auto r = write_file_atomic(p, "hello\n", 0644, Durability::kFsync);
  ::umask(old);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(read(p), "hello\n");
  EXPECT_EQ(mode_of(p), 0644u);
  EXPECT_EQ(entries(), 1u);
}

TEST_F(WriteFileAtomic, ReplacesAndHandlesEmptyAndLargeData) {
  const std::string p = dir_ + "/b";
  ASSERT_TRUE(write_file_atomic(p, std::string(3 << 20, 'x'), 0600, Durability::kNoFsync));
  EXPECT_EQ(read(p).size(), 3u << 20);
  ASSERT_TRUE(write_file_atomic(p, "", 0640, Durability::kNoFsync));
  EXPECT_EQ(read(p), "");
  EXPECT_EQ(mode_of(p), 0640u);
  EXPECT_EQ(entries(), 1u);
}

TEST_F(WriteFileAtomic, FailedRenameKeepsOldFileAndLeavesNoTemporary) {
  // A directory in the target's place: rename(2) of a file over it fails.
  const std::string p = dir_ + "/c";
  fs::create_directory(p);
  auto r = write_file_atomic(p, "new", 0644, Durability::kFsync);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kSyscall);
  EXPECT_NE(r.error().context.find("rename"), std::string::npos) << r.error().context;
  EXPECT_TRUE(fs::is_directory(p));
  EXPECT_EQ(entries(), 1u);
}

TEST_F(WriteFileAtomic, ProcessKilledMidWriteLeavesNothing) {
  // RLIMIT_FSIZE with SIGXFSZ's default action kills the writer inside
  // write(2), after the temporary exists and before any rename.
  const std::string p = dir_ + "/d";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const rlimit fsize{4096, 4096}, core{0, 0};
    ::setrlimit(RLIMIT_FSIZE, &fsize);
    ::setrlimit(RLIMIT_CORE, &core);
    ::signal(SIGXFSZ, SIG_DFL);
    (void)write_file_atomic(p, std::string(1 << 20, 'x'), 0644, Durability::kFsync);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status;
  EXPECT_EQ(WTERMSIG(status), SIGXFSZ);
  EXPECT_EQ(entries(), 0u);  // neither the target nor a temporary
}

TEST_F(WriteFileAtomic, MissingDirectoryIsAnError) {
  auto r = write_file_atomic(dir_ + "/no/such/d", "x", 0644, Durability::kNoFsync);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().sys_errno, ENOENT);
  EXPECT_NE(r.error().context.find("create"), std::string::npos);
}

// read_fd_all: what the supervisor's memfds hold, from offset 0 whatever
// the file position, with a cap.
TEST(ReadFdAll, ReadsFromTheStartWithoutMovingThePosition) {
  UniqueFd fd(::memfd_create("t", MFD_CLOEXEC));
  ASSERT_GE(fd.get(), 0);
  const std::string text(300 * 1024, 'x');  // more than one read's worth
  ASSERT_EQ(::write(fd.get(), text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ASSERT_EQ(::lseek(fd.get(), 5, SEEK_SET), 5);
  auto got = read_fd_all(fd.get(), 1 << 20);
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(*got, text);
  EXPECT_EQ(::lseek(fd.get(), 0, SEEK_CUR), 5);
  auto empty = read_fd_all(UniqueFd(::memfd_create("e", MFD_CLOEXEC)).get(), 10);
  ASSERT_TRUE(empty);
  EXPECT_EQ(*empty, "");
}

TEST(ReadFdAll, RefusesMoreThanTheCap) {
  UniqueFd fd(::memfd_create("t", MFD_CLOEXEC));
  ASSERT_EQ(::write(fd.get(), "0123456789", 10), 10);
  auto got = read_fd_all(fd.get(), 9);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, Errc::kTooLarge);
  EXPECT_TRUE(read_fd_all(fd.get(), 10));
  auto bad = read_fd_all(-1, 10);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().sys_errno, EBADF);
}

}  // namespace
}  // namespace mtw::base
