// Middle-proxy mode, the supervisor's side: who wants the material, each
// user's mode, and what a ready worker's Middle message carries. Rootless:
// the worker's control socket is one end of a socketpair.
#include "daemon/middle_link.h"

#include <sys/socket.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "ipc/control_protocol.h"

namespace mtw::daemon {
namespace {

namespace control = ipc::control;

const std::string kTagA = "0123456789abcdef0123456789abcdef";
const std::string kTagB = "fedcba9876543210fedcba9876543210";

class MiddleLinkTest : public ::testing::Test {
 protected:
  MiddleLinkTest()
      : dir_(std::filesystem::temp_directory_path() /
             ("mtw-middle-link-" + std::to_string(::getpid()))),
        link_(io_, cfg_, users_,
              {[this](std::string_view kind, std::string_view) { events_.emplace_back(kind); },
               [this] { ++material_changes_; }}) {
    std::filesystem::create_directories(dir_);
    cfg_.server.state_dir = dir_.string();
    cfg_.listeners.resize(1);
  }
  ~MiddleLinkTest() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  UserRt& add(supervisor::UserId id, const std::string& name, const std::string& tag) {
    supervisor::StoredUser s;
    s.id = id;
    s.name = name;
    s.ad_tag = tag;
    return users_.add(s, {});
  }

  // A ready worker for `u`; returns our end of its control socket.
  base::UniqueFd give_worker(UserRt& u) {
    int sp[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp), 0);
    u.worker = std::make_shared<ChildProc>(io_);
    u.worker->ctl.assign(sp[0]);
    u.worker->ready = true;
    return base::UniqueFd(sp[1]);
  }

  // The next message on `fd`, if one is there.
  static std::optional<control::Middle> received(const base::UniqueFd& fd) {
    std::vector<std::uint8_t> buf(1 << 16);
    const ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), MSG_DONTWAIT);
    if (n <= 0) return std::nullopt;
    auto m = control::decode(
        std::span(reinterpret_cast<const std::byte*>(buf.data()), static_cast<std::size_t>(n)), 0);
    EXPECT_TRUE(m) << m.error().to_string();
    if (!m || !std::holds_alternative<control::Middle>(*m)) return std::nullopt;
    return std::get<control::Middle>(*m);
  }

  std::filesystem::path dir_;
  asio::io_context io_;
  supervisor::Config cfg_;
  UserRegistry users_;
  std::vector<std::string> events_;
  int material_changes_ = 0;
  MiddleLink link_;
};

TEST_F(MiddleLinkTest, TheMaterialIsWantedOnlyWhileSomeTagIsInUse) {
  add(1, "alice", "");
  EXPECT_FALSE(link_.wanted());
  UserRt& b = add(2, "bob", kTagA);
  EXPECT_TRUE(link_.wanted());
  users_.remove(b.user.id);
  EXPECT_FALSE(link_.wanted());
  cfg_.listeners[0].ad_tag = *supervisor::parse_ad_tag(kTagB);  // a listener's tag counts too
  EXPECT_TRUE(link_.wanted());
}

TEST_F(MiddleLinkTest, ATaggedUserWithoutMaterialFallsBackAndAnUntaggedOneIsDirect) {
  ASSERT_TRUE(link_.start());  // nothing stored, nothing wanted: no fetch
  EXPECT_FALSE(link_.status().ready);
  EXPECT_TRUE(link_.proxies().empty());
  UserRt& a = add(1, "alice", "");
  UserRt& b = add(2, "bob", kTagA);
  EXPECT_EQ(link_.mode_of(a), supervisor::MiddleMode::kDirect);
  EXPECT_EQ(link_.mode_of(b), supervisor::MiddleMode::kFallback);
}

TEST_F(MiddleLinkTest, AReadyWorkerGetsItsUsersTagAndNoOtherWorkerIsSentAnything) {
  ASSERT_TRUE(link_.start());
  UserRt& a = add(1, "alice", "");
  UserRt& b = add(2, "bob", kTagA);
  UserRt& c = add(3, "carol", kTagB);
  const auto fa = give_worker(a);
  const auto fb = give_worker(b);
  const auto fc = give_worker(c);
  c.worker->ready = false;  // still starting: it is sent one when ready

  link_.send(b, true);
  const auto m = received(fb);
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->default_tag);
  EXPECT_EQ(*m->default_tag, *supervisor::parse_ad_tag(kTagA));
  EXPECT_TRUE(m->listener_tags.empty());  // the user's tag covers every listener
  EXPECT_TRUE(m->proxy_secret.empty());   // no material at hand: tags only
  EXPECT_FALSE(received(fa));
  EXPECT_FALSE(received(fc));

  link_.push(true);  // after a reload: every ready worker, the direct one too
  const auto ma = received(fa);
  ASSERT_TRUE(ma);
  EXPECT_FALSE(ma->default_tag);
  EXPECT_TRUE(received(fb));
  EXPECT_FALSE(received(fc));
  EXPECT_TRUE(events_.empty());
  EXPECT_EQ(material_changes_, 0);
}

}  // namespace
}  // namespace mtw::daemon
