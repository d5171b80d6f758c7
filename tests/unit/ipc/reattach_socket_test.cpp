#include "ipc/reattach_socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace mtw::ipc {
namespace {

class ReattachSocket : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mtw-reattach-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/worker.sock";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_, path_;
};

TEST_F(ReattachSocket, ListensWithMode0600AndConnectsBothWaysWithCredentials) {
  auto l = listen_reattach(path_);
  ASSERT_TRUE(l) << l.error().to_string();
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  int type = 0;
  socklen_t len = sizeof type;
  ASSERT_EQ(::getsockopt(l->get(), SOL_SOCKET, SO_TYPE, &type, &len), 0);
  EXPECT_EQ(type, SOCK_SEQPACKET);

  auto c = connect_reattach(path_);
  ASSERT_TRUE(c) << c.error().to_string();
  base::UniqueFd a(::accept4(l->get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(a);
  auto theirs = peer_cred(a.get());  // what the worker judges
  auto ours = peer_cred(c->get());   // what the controller learns: the worker's pid
  ASSERT_TRUE(theirs && ours);
  EXPECT_EQ(theirs->pid, ::getpid());
  EXPECT_EQ(theirs->uid, ::geteuid());
  EXPECT_EQ(ours->pid, ::getpid());
  // One datagram each way, boundaries kept.
  ASSERT_EQ(::send(c->get(), "abc", 3, 0), 3);
  char buf[8] = {};
  EXPECT_EQ(::recv(a.get(), buf, sizeof buf, 0), 3);
}

TEST_F(ReattachSocket, ADeadListenersPathIsNotFound) {
  {
    auto l = listen_reattach(path_);
    ASSERT_TRUE(l);
  }  // the worker exited: its socket closed, the file stays
  ASSERT_TRUE(std::filesystem::exists(path_));
  auto c = connect_reattach(path_);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, base::Errc::kNotFound);
  EXPECT_EQ(c.error().sys_errno, ECONNREFUSED);
  auto none = connect_reattach(dir_ + "/nobody.sock");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, base::Errc::kNotFound);
}

TEST_F(ReattachSocket, AStaleFileIsReplaced) {
  { std::ofstream(path_) << "stale"; }
  auto l = listen_reattach(path_);
  ASSERT_TRUE(l) << l.error().to_string();
  EXPECT_TRUE(connect_reattach(path_));
}

TEST_F(ReattachSocket, RefusesPathsThatDoNotFit) {
  for (const std::string& p : {std::string(), std::string(108, 'x'), std::string("\0abs", 4)}) {
    auto l = listen_reattach(p);
    ASSERT_FALSE(l);
    EXPECT_EQ(l.error().code, base::Errc::kBadInput);
    auto c = connect_reattach(p);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, base::Errc::kBadInput);
  }
}

TEST_F(ReattachSocket, ChecksAWorkersListenerForWhatItIs) {
  auto l = listen_reattach(path_);
  ASSERT_TRUE(l);
  EXPECT_TRUE(check_reattach_listener(l->get()));
  auto c = connect_reattach(path_);  // connected, not listening
  ASSERT_TRUE(c);
  auto r = check_reattach_listener(c->get());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, base::Errc::kBadInput);
  base::UniqueFd stream(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  const std::string sp = dir_ + "/stream.sock";
  std::memcpy(a.sun_path, sp.c_str(), sp.size() + 1);
  ASSERT_EQ(::bind(stream.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(stream.get(), 1), 0);  // listening, but a stream socket
  EXPECT_FALSE(check_reattach_listener(stream.get()));
  base::UniqueFd file(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  auto f = check_reattach_listener(file.get());
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().code, base::Errc::kSyscall);
}

TEST_F(ReattachSocket, PeerCredOfASocketpairIsItsMaker) {
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
  base::UniqueFd x(sp[0]), y(sp[1]);
  auto c = peer_cred(y.get());
  ASSERT_TRUE(c);
  EXPECT_EQ(c->pid, ::getpid());
  EXPECT_EQ(c->uid, ::geteuid());
  EXPECT_FALSE(peer_cred(-1));
}

}  // namespace
}  // namespace mtw::ipc
