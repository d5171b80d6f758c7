// The cells' counters on their way into the store: billed once, kept when a
// commit fails, counted in the quota only once stored. Rootless: the store's
// transaction is a function that records what it was given.
#include "daemon/usage_ledger.h"

#include <gtest/gtest.h>

#include <vector>

namespace mtw::daemon {
namespace {

using supervisor::CellBytes;
using supervisor::UnixSeconds;
using supervisor::UsageDelta;

constexpr UnixSeconds kNow = 1'780'000'000;

class UsageLedgerTest : public ::testing::Test {
 protected:
  UsageLedgerTest()
      : ledger_(users_,
                [this](std::span<const UsageDelta> d, UnixSeconds at) -> base::Result<void> {
                  commits_.emplace_back(d.begin(), d.end());
                  commit_times_.push_back(at);
                  if (fail_) return base::fail(base::Errc::kSyscall, "database is locked");
                  return {};
                }) {}

  UserRt& add(supervisor::UserId id, const std::string& name) {
    supervisor::StoredUser s;
    s.id = id;
    s.name = name;
    UserRt& u = users_.add(s, {});
    u.limits.period = supervisor::Period::kDaily;
    u.period = supervisor::period_bounds(u.limits.period, 1, kNow);
    return u;
  }

  UserRegistry users_;
  std::vector<std::vector<UsageDelta>> commits_;
  std::vector<UnixSeconds> commit_times_;
  bool fail_ = false;
  UsageLedger ledger_;
};

TEST_F(UsageLedgerTest, AFailedCommitIsBilledByTheNextSweep) {
  UserRt& a = add(1, "alice");
  UserRt& b = add(2, "bob");
  ledger_.read(a, CellBytes{100, 1000});
  ledger_.read(b, CellBytes{0, 0});
  EXPECT_EQ(ledger_.bill(1.0), 1u);  // bob moved nothing
  fail_ = true;
  ASSERT_FALSE(ledger_.commit(kNow));
  EXPECT_EQ(ledger_.pending(), 1u);
  EXPECT_EQ(a.period_usage.total(), 0u);  // not stored: not counted
  EXPECT_EQ(a.bytes_down_total, 0u);
  EXPECT_EQ(a.billed_bytes, (CellBytes{100, 1000}));  // captured in the pending delta
  EXPECT_EQ(a.rate_bps_down, 8000u);

  // The next sweep: 50 + 500 more; the commit takes both sweeps' bytes.
  fail_ = false;
  ledger_.read(a, CellBytes{150, 1500});
  ledger_.read(b, CellBytes{0, 0});
  EXPECT_EQ(ledger_.bill(1.0), 1u);
  ASSERT_TRUE(ledger_.commit(kNow + 1));
  ASSERT_EQ(commits_.size(), 2u);
  ASSERT_EQ(commits_[1].size(), 1u);
  EXPECT_EQ(commits_[1][0].user, 1);
  EXPECT_EQ(commits_[1][0].bytes_up, 150u);
  EXPECT_EQ(commits_[1][0].bytes_down, 1500u);
  EXPECT_EQ(commit_times_[1], kNow + 1);
  EXPECT_EQ(ledger_.pending(), 0u);
  EXPECT_EQ(a.period_usage, (supervisor::Usage{150, 1500}));
  EXPECT_EQ(a.bytes_up_total, 150u);
  EXPECT_EQ(a.bytes_down_total, 1500u);
  EXPECT_EQ(a.rate_bps_down, 4000u);      // this sweep's 500 bytes
  EXPECT_EQ(b.period_usage.total(), 0u);  // the other user untouched
  EXPECT_EQ(b.bytes_down_total, 0u);

  // Nothing moved: an empty commit, nothing billed twice.
  ledger_.read(a, CellBytes{150, 1500});
  EXPECT_EQ(ledger_.bill(1.0), 0u);
  ASSERT_TRUE(ledger_.commit(kNow + 2));
  ASSERT_EQ(commits_.size(), 3u);
  EXPECT_TRUE(commits_[2].empty());
  EXPECT_EQ(a.period_usage, (supervisor::Usage{150, 1500}));
}

TEST_F(UsageLedgerTest, BytesOfAnEndedPeriodAreStoredButNotCountedInTheNewOne) {
  UserRt& a = add(1, "alice");
  ledger_.read(a, CellBytes{0, 700});
  ledger_.bill(1.0);
  fail_ = true;
  ASSERT_FALSE(ledger_.commit(kNow));
  // The day ends before a commit succeeds.
  const UnixSeconds tomorrow = a.period.end + 10;
  const supervisor::PeriodBounds yesterday = a.period;
  a.period = supervisor::period_bounds(a.limits.period, 1, tomorrow);
  a.period_usage = {};
  ledger_.read(a, CellBytes{0, 1000});
  ledger_.bill(1.0);
  fail_ = false;
  ASSERT_TRUE(ledger_.commit(tomorrow));
  ASSERT_EQ(commits_.back().size(), 2u);  // one per period
  std::uint64_t old_period = 0, new_period = 0;
  for (const auto& d : commits_.back())
    (d.period.start == yesterday.start ? old_period : new_period) += d.bytes_down;
  EXPECT_EQ(old_period, 700u);
  EXPECT_EQ(new_period, 300u);
  EXPECT_EQ(a.period_usage.bytes_down, 300u);
  EXPECT_EQ(a.bytes_down_total, 1000u);
}

TEST_F(UsageLedgerTest, ADeletedUsersPendingBytesAreDropped) {
  UserRt& a = add(1, "alice");
  UserRt& b = add(2, "bob");
  ledger_.read(a, CellBytes{0, 10});
  ledger_.read(b, CellBytes{0, 20});
  ledger_.bill(1.0);
  fail_ = true;
  ASSERT_FALSE(ledger_.commit(kNow));
  EXPECT_EQ(ledger_.pending(), 2u);
  users_.remove(1);
  fail_ = false;
  ASSERT_TRUE(ledger_.commit(kNow + 1));
  ASSERT_EQ(commits_.back().size(), 1u);
  EXPECT_EQ(commits_.back()[0].user, 2);
  EXPECT_EQ(users_.find(supervisor::UserId{2})->bytes_down_total, 20u);
}

}  // namespace
}  // namespace mtw::daemon
