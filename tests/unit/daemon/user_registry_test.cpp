// The user registry keeps its indexes consistent through every change.
#include "daemon/user_registry.h"

#include <gtest/gtest.h>

namespace mtw::daemon {
namespace {

const std::string kKeyA = "0123456789abcdef0123456789abcdef";
const std::string kKeyB = "fedcba9876543210fedcba9876543210";
const std::string kKeyC = "00112233445566778899aabbccddeeff";

supervisor::StoredUser user(UserId id, std::string name, std::vector<std::string> secrets) {
  supervisor::StoredUser u;
  u.id = id;
  u.name = std::move(name);
  u.secrets = std::move(secrets);
  return u;
}

TEST(UserRegistry, FindsAUserByIdAndByName) {
  UserRegistry r;
  UserRt& a = r.add(user(1, "alice", {kKeyA}), {});
  EXPECT_EQ(r.find(UserId{1}), &a);
  EXPECT_EQ(r.find(std::string_view("alice")), &a);
  EXPECT_EQ(r.find(UserId{2}), nullptr);
  EXPECT_EQ(r.find(std::string_view("bob")), nullptr);
  EXPECT_EQ(r.size(), 1u);
}

TEST(UserRegistry, RefusesAnotherUsersKeyButNotTheUsersOwn) {
  UserRegistry r;
  r.add(user(1, "alice", {kKeyA}), {});
  r.add(user(2, "bob", {kKeyB}), {});
  auto taken = r.check_secrets_free({"ee" + kKeyA.substr(0, 32) + "6578616d706c652e636f6d"}, 2);
  ASSERT_FALSE(taken);  // the same key in a fake-TLS secret is the same key
  EXPECT_EQ(taken.error().code, base::Errc::kExists);
  EXPECT_TRUE(r.check_secrets_free({kKeyA}, 1));
  EXPECT_TRUE(r.check_secrets_free({kKeyC}, 0));
}

TEST(UserRegistry, RefusesTheSameKeyTwiceAndUnparsableSecrets) {
  UserRegistry r;
  auto twice = r.check_secrets_free({kKeyC, "dd" + kKeyC}, 0);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, base::Errc::kBadInput);
  auto bad = r.check_secrets_free({"not a secret"}, 0);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, base::Errc::kBadInput);
}

TEST(UserRegistry, ANewDefinitionMovesTheKeyIndexWithIt) {
  UserRegistry r;
  UserRt& a = r.add(user(1, "alice", {kKeyA}), {});
  r.set_definition(a, user(1, "alice", {kKeyB}));
  EXPECT_TRUE(r.check_secrets_free({kKeyA}, 2));  // the old key is free again
  auto b = r.check_secrets_free({kKeyB}, 2);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, base::Errc::kExists);
}

TEST(UserRegistry, RemoveDropsTheUserFromEveryIndex) {
  UserRegistry r;
  r.reset_uid_slots(1);
  UserRt& a = r.add(user(1, "alice", {kKeyA}), {});
  ASSERT_TRUE(r.claim_uid_slot(a));
  r.remove(1);
  EXPECT_EQ(r.find(UserId{1}), nullptr);
  EXPECT_EQ(r.find(std::string_view("alice")), nullptr);
  EXPECT_TRUE(r.check_secrets_free({kKeyA}, 0));
  UserRt& b = r.add(user(2, "bob", {kKeyB}), {});
  EXPECT_TRUE(r.claim_uid_slot(b));  // alice's slot was freed
  EXPECT_EQ(b.uid_slot, 0u);
}

TEST(UserRegistry, UidSlotsRunOutAndComeBack) {
  UserRegistry r;
  r.reset_uid_slots(2);
  UserRt& a = r.add(user(1, "a", {kKeyA}), {});
  UserRt& b = r.add(user(2, "b", {kKeyB}), {});
  UserRt& c = r.add(user(3, "c", {kKeyC}), {});
  ASSERT_TRUE(r.claim_uid_slot(a));
  ASSERT_TRUE(r.claim_uid_slot(b));
  EXPECT_TRUE(r.claim_uid_slot(a));  // has one already: the same
  EXPECT_EQ(a.uid_slot, 0u);
  EXPECT_FALSE(r.claim_uid_slot(c));
  EXPECT_FALSE(c.uid_slot);
  r.release_uid_slot(a);
  EXPECT_FALSE(a.uid_slot);
  ASSERT_TRUE(r.claim_uid_slot(c));
  EXPECT_EQ(c.uid_slot, 0u);
}

ipc::control::PeerAddress peer(std::uint8_t last) {
  ipc::control::PeerAddress p;
  p.family = 4;
  p.addr[0] = std::byte{10};
  p.addr[3] = std::byte{last};
  return p;
}

TEST(UserRt, AReportDropsOnlyTheHandoffsItCovers) {
  asio::io_context io;
  UserRegistry r;
  UserRt& u = r.add(user(1, "alice", {kKeyA}), {});
  u.worker = std::make_shared<ChildProc>(io);
  u.sent = 1;
  u.note_unreported(false, peer(1));
  u.sent = 2;
  u.note_unreported(false, peer(2));
  u.direct_seen = 1;
  u.note_unreported(true, peer(3));
  EXPECT_EQ(u.active(), 3u);
  EXPECT_TRUE(u.online());
  EXPECT_EQ(u.seen(500), 500);  // online: now

  u.worker->counters[ipc::Counter::kHandoffs] = 1;  // the worker got the first only
  u.worker->counters[ipc::Counter::kActive] = 1;
  u.drop_reported();
  ASSERT_EQ(u.unreported.size(), 2u);
  EXPECT_EQ(u.unreported[0].client.addr[3], std::byte{2});
  EXPECT_TRUE(u.unreported[1].direct);

  u.worker->counters[ipc::Counter::kHandoffs] = 2;
  u.worker->counters[ipc::Counter::kDirectHandoffs] = 1;
  u.worker->counters[ipc::Counter::kActive] = 0;  // all three closed again
  u.drop_reported();
  EXPECT_TRUE(u.unreported.empty());
  EXPECT_FALSE(u.online());
  u.last_seen = 420;
  EXPECT_EQ(u.seen(500), 420);
}

TEST(UserRt, UnreportedHandoffsAreBounded) {
  UserRegistry r;
  UserRt& u = r.add(user(1, "alice", {kKeyA}), {});
  for (std::size_t i = 1; i <= UserRt::kMaxUnreported + 10; ++i) {
    u.sent = i;
    u.note_unreported(false, peer(1));
  }
  EXPECT_EQ(u.unreported.size(), UserRt::kMaxUnreported);
  EXPECT_EQ(u.unreported.front().ordinal, 11u);  // the oldest went
  u.drop_reported();                             // no worker: nothing can be in flight to it
  EXPECT_TRUE(u.unreported.empty());
}

}  // namespace
}  // namespace mtw::daemon
