// ReplayStore: the replay cache survives a restart through its file, the
// file keeps a fixed size, and a file it cannot use is started afresh.
#include "gate/replay_store.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/unique_fd.h"

namespace mtw::gate {
namespace {

proto::Bytes digest(std::uint32_t i) {
  proto::Bytes d(32, std::byte{0});
  for (int b = 0; b < 4; ++b) d[b] = static_cast<std::byte>(i >> (8 * b));
  return d;
}

proto::ReplayCache cache(std::size_t cap) {
  return proto::ReplayCache({.max_entries = cap, .window_seconds = 3600});
}

off_t size_of(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? st.st_size : -1;
}

TEST(ReplayStore, ACacheComesBackAfterARestart) {
  base::UniqueFd fd(::memfd_create("replay", MFD_CLOEXEC));
  ASSERT_TRUE(fd);
  auto first = cache(8);
  ReplayStore s1(fd.get());
  auto l1 = s1.load(first, 1000);
  ASSERT_TRUE(l1.has_value()) << l1.error().to_string();
  EXPECT_TRUE(l1->fresh);
  EXPECT_EQ(size_of(fd.get()), static_cast<off_t>(proto::replay_file_bytes(8)));
  for (std::uint32_t i = 0; i < 11; ++i) first.check_and_insert(digest(i), 1000 + i);  // wraps
  auto n = s1.flush(first);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*n, 8u);  // the journal keeps the newest `capacity`: the older are overwritten anyway

  auto second = cache(8);  // a new process: another random key until load
  ReplayStore s2(fd.get());
  auto l2 = s2.load(second, 1020);
  ASSERT_TRUE(l2.has_value());
  EXPECT_FALSE(l2->fresh) << l2->why_fresh;
  EXPECT_EQ(l2->restored, 8u);  // the newest capacity inserts
  EXPECT_FALSE(second.contains(digest(2), 1020));
  for (std::uint32_t i = 3; i < 11; ++i) EXPECT_TRUE(second.check_and_insert(digest(i), 1020)) << i;
  // New inserts after the restart continue the ring.
  second.check_and_insert(digest(50), 1021);
  ASSERT_TRUE(s2.flush(second).has_value());
  EXPECT_EQ(size_of(fd.get()), static_cast<off_t>(proto::replay_file_bytes(8)));
  auto third = cache(8);
  ReplayStore s3(fd.get());
  ASSERT_TRUE(s3.load(third, 1022).has_value());
  EXPECT_TRUE(third.contains(digest(50), 1022));
  EXPECT_FALSE(third.contains(digest(3), 1022));  // pushed out by 50
}

TEST(ReplayStore, ExpiredEntriesStayBehind) {
  base::UniqueFd fd(::memfd_create("replay", MFD_CLOEXEC));
  auto a = cache(8);
  ReplayStore s(fd.get());
  ASSERT_TRUE(s.load(a, 1000).has_value());
  a.check_and_insert(digest(1), 1000);
  a.check_and_insert(digest(2), 2000);
  ASSERT_TRUE(s.flush(a).has_value());
  auto b = cache(8);
  ReplayStore s2(fd.get());
  auto l = s2.load(b, 4700);  // window 3600: only the second is young enough
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(l->restored, 1u);
}

TEST(ReplayStore, AnUnusableFileIsStartedAfresh) {
  base::UniqueFd fd(::memfd_create("replay", MFD_CLOEXEC));
  ASSERT_EQ(::write(fd.get(), "not a replay file at all, but long enough for a header.....!!", 62),
            62);
  auto a = cache(8);
  ReplayStore s(fd.get());
  auto l = s.load(a, 1000);
  ASSERT_TRUE(l.has_value());
  EXPECT_TRUE(l->fresh);
  EXPECT_NE(l->why_fresh, "");
  // Another capacity: also afresh (the ring's slots would not line up).
  a.check_and_insert(digest(1), 1000);
  ASSERT_TRUE(s.flush(a).has_value());
  auto bigger = cache(16);
  ReplayStore s2(fd.get());
  auto l2 = s2.load(bigger, 1000);
  ASSERT_TRUE(l2.has_value());
  EXPECT_TRUE(l2->fresh);
  EXPECT_EQ(size_of(fd.get()), static_cast<off_t>(proto::replay_file_bytes(16)));
}

}  // namespace
}  // namespace mtw::gate
