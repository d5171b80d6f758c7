// First-start secrets: printed on a terminal, otherwise only into a 0600 file.
#include "supervisor/reveal.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace mtw::supervisor {
namespace {

class Reveal : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = (std::filesystem::temp_directory_path() / "mtw_reveal_XXXXXX").string();
    dir_ = ::mkdtemp(t.data());
    path_ = dir_ + "/first-start.txt";
    ASSERT_EQ(::pipe2(pipe_, O_CLOEXEC | O_NONBLOCK), 0);
  }
  void TearDown() override {
    ::close(pipe_[0]);
    ::close(pipe_[1]);
    std::filesystem::remove_all(dir_);
  }
  std::string file() const {
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  mode_t mode() const {
    struct stat st {};
    EXPECT_EQ(::stat(path_.c_str(), &st), 0);
    return st.st_mode & 07777;
  }
  std::string dir_, path_;
  int pipe_[2];
};

TEST_F(Reveal, NotATerminalGoesToA0600FileOnly) {
  auto r = reveal_secrets("tg://proxy?secret=1\n", pipe_[1], path_);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(*r, RevealedTo::kFile);
  r = reveal_secrets("token mtw_x\n", pipe_[1], path_);
  ASSERT_TRUE(r);
  EXPECT_EQ(file(), "tg://proxy?secret=1\ntoken mtw_x\n");
  EXPECT_EQ(mode(), 0600u);
  char c;
  EXPECT_EQ(::read(pipe_[0], &c, 1), -1);  // nothing on the "journal"
  EXPECT_EQ(errno, EAGAIN);
}

TEST_F(Reveal, AnExistingFileIsMadePrivate) {
  std::ofstream(path_) << "old\n";
  ASSERT_EQ(::chmod(path_.c_str(), 0644), 0);
  ASSERT_TRUE(reveal_secrets("new\n", pipe_[1], path_));
  EXPECT_EQ(mode(), 0600u);
  EXPECT_EQ(file(), "old\nnew\n");
}

TEST_F(Reveal, DoesNotFollowASymlink) {
  const std::string target = dir_ + "/elsewhere";
  std::filesystem::create_symlink(target, path_);
  auto r = reveal_secrets("secret\n", pipe_[1], path_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().sys_errno, ELOOP);
  EXPECT_NE(r.error().context.find(path_), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(target));
}

TEST_F(Reveal, ATerminalGetsTheTextAndNoFileIsWritten) {
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) GTEST_SKIP() << "no pseudo-terminals here";
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  const int slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(slave, 0);
  auto r = reveal_secrets("links\n", slave, path_);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(*r, RevealedTo::kTerminal);
  EXPECT_FALSE(std::filesystem::exists(path_));
  pollfd p{master, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 2000), 1);
  char buf[64];
  const ssize_t n = ::read(master, buf, sizeof buf);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0), "links\r\n");  // tty adds CR
  ::close(slave);
  ::close(master);
}

}  // namespace
}  // namespace mtw::supervisor
