#include "supervisor/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

namespace mtw::supervisor {
namespace {

UnixSeconds utc(int y, unsigned m, unsigned d, int hour = 0) {
  using namespace std::chrono;
  return sys_seconds(sys_days(year{y} / month{m} / day{d})).time_since_epoch().count() +
         hour * 3600;
}

constexpr UnixSeconds kDay = 86400;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mtw-store-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/state.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Store open() {
    auto s = Store::open(path_);
    EXPECT_TRUE(s) << s.error().to_string();
    return std::move(*s);
  }

  static StoredUser user(std::string name, std::string secret) {
    StoredUser u;
    u.name = std::move(name);
    u.secrets = {std::move(secret)};
    return u;
  }

  // Runs one SQL statement on the file directly and returns the first column.
  std::string raw_query(const std::string& q) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db, q.c_str(), -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
      out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }

  std::string dir_, path_;
};

TEST_F(StoreTest, CreatesCurrentSchemaInWalModeWithPrivateFile) {
  Store s = open();
  EXPECT_EQ(s.schema_version().value(), kSchemaVersion);
  EXPECT_EQ(raw_query("PRAGMA journal_mode"), "wal");
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(StoreTest, MigratesAnOlderSchemaAndReopeningIsIdempotent) {
  {
    auto v1 = Store::open(path_, Store::Options{1});
    ASSERT_TRUE(v1);
    EXPECT_EQ(v1->schema_version().value(), 1);
  }
  EXPECT_EQ(raw_query("SELECT count(*) FROM sqlite_master WHERE name = 'events_at'"), "0");
  {
    Store s = open();
    EXPECT_EQ(s.schema_version().value(), kSchemaVersion);
    ASSERT_TRUE(s.add_user(user("alice", "aa"), 100));
  }
  Store again = open();
  EXPECT_EQ(again.schema_version().value(), kSchemaVersion);
  EXPECT_EQ(raw_query("SELECT count(*) FROM sqlite_master WHERE name = 'events_at'"), "1");
  EXPECT_TRUE(again.find_user("alice").value().has_value());
}

TEST_F(StoreTest, SecretsKeepTheirGraceDeadline) {
  Store s = open();
  StoredUser u = user("alice", "s1");
  u.secrets.push_back("s2");
  u.secret_expires = {1'000, std::nullopt};
  auto id = s.add_user(u, 100);
  ASSERT_TRUE(id);
  auto back = s.find_user("alice").value();
  ASSERT_TRUE(back);
  EXPECT_EQ(back->secrets, (std::vector<std::string>{"s1", "s2"}));
  ASSERT_EQ(back->secret_expires.size(), 2u);
  EXPECT_EQ(back->secret_expires[0], std::optional<UnixSeconds>(1'000));
  EXPECT_EQ(back->secret_expires[1], std::nullopt);
  // A version-2 file gains the column with every secret permanent.
  back->secret_expires = {std::nullopt, std::nullopt};
  ASSERT_TRUE(s.update_user(*back));
  EXPECT_EQ(s.find_user("alice").value()->secret_expires[0], std::nullopt);
}

TEST_F(StoreTest, RefusesAFileFromANewerVersion) {
  { Store s = open(); }
  raw_query("PRAGMA user_version = 99");
  auto s = Store::open(path_);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, base::Errc::kInternal);
  EXPECT_NE(s.error().context.find("newer"), std::string::npos);
}

TEST_F(StoreTest, UserRoundTripsWithOverridesAndSecrets) {
  Store s = open();
  StoredUser u = user("alice", "s1");
  u.secrets.push_back("s2");
  u.enabled = false;
  u.expires_at = utc(2030, 1, 1);
  u.comment = "phone";
  u.origin = UserOrigin::kConfig;
  u.overrides.quota_bytes = 5'000'000;
  u.overrides.period = Period::kWeekly;
  u.overrides.on_demand = true;
  const UserId id = s.add_user(u, 1234).value();
  auto got = s.find_user("alice").value();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->id, id);
  EXPECT_EQ(got->secrets, (std::vector<std::string>{"s1", "s2"}));
  EXPECT_FALSE(got->enabled);
  EXPECT_EQ(got->expires_at, utc(2030, 1, 1));
  EXPECT_EQ(got->comment, "phone");
  EXPECT_EQ(got->origin, UserOrigin::kConfig);
  EXPECT_EQ(got->created_at, 1234);
  EXPECT_EQ(got->overrides, u.overrides);
  EXPECT_FALSE(got->overrides.rate_up_bps.has_value());
}

TEST_F(StoreTest, DuplicateNameIsExists) {
  Store s = open();
  ASSERT_TRUE(s.add_user(user("alice", "s1"), 1));
  auto r = s.add_user(user("alice", "s2"), 1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, base::Errc::kExists);
}

TEST_F(StoreTest, DuplicateSecretFailsWithoutLeavingTheUserBehind) {
  Store s = open();
  ASSERT_TRUE(s.add_user(user("alice", "s1"), 1));
  auto r = s.add_user(user("bob", "s1"), 1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, base::Errc::kExists);
  EXPECT_EQ(r.error().context.find("s1"), std::string::npos) << "secret must not be echoed";
  EXPECT_FALSE(s.find_user("bob").value().has_value());
}

TEST_F(StoreTest, UpdateChangesLimitsAndSecrets) {
  Store s = open();
  StoredUser u = user("alice", "s1");
  u.id = s.add_user(u, 1).value();
  u.secrets = {"s9"};
  u.overrides.max_connections = 7;
  ASSERT_TRUE(s.update_user(u));
  auto got = s.find_user("alice").value();
  EXPECT_EQ(got->secrets, std::vector<std::string>{"s9"});
  EXPECT_EQ(got->overrides.max_connections, 7u);
  u.id = 999;
  EXPECT_EQ(s.update_user(u).error().code, base::Errc::kNotFound);
}

TEST_F(StoreTest, SweepAddsToPeriodAndDayTotals) {
  Store s = open();
  const UserId a = s.add_user(user("a", "sa"), 1).value();
  const PeriodBounds p{utc(2024, 3, 1), utc(2024, 4, 1)};
  const UnixSeconds now = utc(2024, 3, 10, 12);
  const UsageDelta d[] = {{a, 100, 1000, p}};
  ASSERT_TRUE(s.apply_sweep(d, now));
  ASSERT_TRUE(s.apply_sweep(d, now + 1));
  EXPECT_EQ(s.period_usage(a, p.start).value(), (Usage{200, 2000}));
  auto days = s.daily_history(a, utc(2024, 3, 1), utc(2024, 4, 1)).value();
  ASSERT_EQ(days.size(), 1u);
  EXPECT_EQ(days[0].day, utc(2024, 3, 10) / kDay);
  EXPECT_EQ(days[0].usage, (Usage{200, 2000}));
  EXPECT_EQ(s.last_sweep_at().value(), now + 1);
}

TEST_F(StoreTest, FailingDeltaRollsBackTheWholeSweep) {
  Store s = open();
  const UserId a = s.add_user(user("a", "sa"), 1).value();
  const PeriodBounds p{utc(2024, 3, 1), utc(2024, 4, 1)};
  const UsageDelta first[] = {{a, 10, 10, p}};
  ASSERT_TRUE(s.apply_sweep(first, utc(2024, 3, 2)));
  // The delta for `a` is written before the unknown user's insert fails.
  const UsageDelta bad[] = {{a, 5, 5, p}, {a + 999, 1, 1, p}};
  auto r = s.apply_sweep(bad, utc(2024, 3, 3));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, base::Errc::kNotFound);
  EXPECT_EQ(s.period_usage(a, p.start).value(), (Usage{10, 10}));
  EXPECT_EQ(s.daily_history(a, 0, utc(2025, 1, 1)).value().size(), 1u);
  EXPECT_EQ(s.last_sweep_at().value(), utc(2024, 3, 2));
  // The store stays usable after the rollback.
  ASSERT_TRUE(s.apply_sweep(first, utc(2024, 3, 4)));
  EXPECT_EQ(s.period_usage(a, p.start).value(), (Usage{20, 20}));
}

TEST_F(StoreTest, ImpossibleDeltaIsRejectedBeforeWriting) {
  Store s = open();
  const UserId a = s.add_user(user("a", "sa"), 1).value();
  const UsageDelta d[] = {{a, std::uint64_t{1} << 63, 0, {0, kForever}}};
  EXPECT_EQ(s.apply_sweep(d, 10).error().code, base::Errc::kBadInput);
  EXPECT_EQ(s.period_usage(a, 0).value(), (Usage{0, 0}));
}

TEST_F(StoreTest, ReopeningKeepsCommittedUsage) {
  UserId a = 0;
  const PeriodBounds p{0, kForever};
  {
    Store s = open();
    a = s.add_user(user("a", "sa"), 1).value();
    const UsageDelta d[] = {{a, 7, 9, p}};
    ASSERT_TRUE(s.apply_sweep(d, 1000));
  }
  Store s = open();
  EXPECT_EQ(s.period_usage(a, 0).value(), (Usage{7, 9}));
  EXPECT_EQ(s.last_sweep_at().value(), 1000);
}

TEST_F(StoreTest, KeepsFourHundredDaysOfHistoryAndPrunesOlder) {
  Store s = open();
  const UserId a = s.add_user(user("a", "sa"), 1).value();
  const UnixSeconds first = utc(2023, 1, 1, 12);
  constexpr int kDays = 420;
  for (int i = 0; i < kDays; ++i) {
    const UnixSeconds now = first + i * kDay;
    const UsageDelta d[] = {{a, 1, 2, period_bounds(Period::kMonthly, 1, now)}};
    ASSERT_TRUE(s.apply_sweep(d, now));
  }
  const UnixSeconds last = first + (kDays - 1) * kDay;
  EXPECT_EQ(s.daily_history(a, 0, last + kDay).value().size(), 420u);
  auto months = s.monthly_history(a, utc(2023, 1, 1), utc(2023, 3, 1)).value();
  ASSERT_EQ(months.size(), 2u);
  EXPECT_EQ(months[0].year, 2023);
  EXPECT_EQ(months[0].month, 1u);
  EXPECT_EQ(months[0].usage, (Usage{31, 62}));
  EXPECT_EQ(months[1].usage, (Usage{28, 56}));

  auto removed = s.prune(last, 400);
  ASSERT_TRUE(removed) << removed.error().to_string();
  auto days = s.daily_history(a, 0, last + kDay).value();
  ASSERT_EQ(days.size(), 401u);  // the last 400 days and today
  EXPECT_EQ(days.front().day, last / kDay - 400);
  EXPECT_EQ(*removed, 19u);  // 2023-01-01 .. 2023-01-19
  // January 2023 ended (Feb 1) after the cutoff (Jan 20): still there.
  EXPECT_EQ(s.period_usage(a, utc(2023, 1, 1)).value(), (Usage{31, 62}));
  // 400 days before 2024-03-15 is 2023-02-09: now January 2023 has ended
  // before the cutoff and goes; February 2023 stays.
  ASSERT_TRUE(s.prune(utc(2024, 3, 15), 400));
  EXPECT_EQ(s.period_usage(a, utc(2023, 1, 1)).value(), (Usage{0, 0}));
  EXPECT_EQ(s.period_usage(a, utc(2023, 2, 1)).value(), (Usage{28, 56}));
  EXPECT_EQ(s.period_usage(a, utc(2024, 2, 1)).value().bytes_up, 24u);  // Feb 1..24
}

TEST_F(StoreTest, PruneKeepsLifetimeUsage) {
  Store s = open();
  const UserId a = s.add_user(user("a", "sa"), 1).value();
  const UsageDelta d[] = {{a, 5, 5, {0, kForever}}};
  ASSERT_TRUE(s.apply_sweep(d, utc(2020, 1, 1)));
  ASSERT_TRUE(s.prune(utc(2030, 1, 1), 400));
  EXPECT_EQ(s.period_usage(a, 0).value(), (Usage{5, 5}));
}

TEST_F(StoreTest, ResetPeriodZeroesUsageKeepsHistoryAndRecordsEvent) {
  Store s = open();
  const UserId a = s.add_user(user("a", "sa"), 1).value();
  const PeriodBounds p{utc(2024, 3, 1), utc(2024, 4, 1)};
  const UsageDelta d[] = {{a, 50, 50, p}};
  ASSERT_TRUE(s.apply_sweep(d, utc(2024, 3, 5)));
  ASSERT_TRUE(s.reset_period(a, p.start, utc(2024, 3, 6), "api"));
  EXPECT_EQ(s.period_usage(a, p.start).value(), (Usage{0, 0}));
  EXPECT_EQ(s.daily_history(a, p.start, p.end).value().size(), 1u);
  auto ev = s.events(a, 10).value();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, "period_reset");
  EXPECT_NE(ev[0].detail.find("by=api"), std::string::npos);
}

TEST_F(StoreTest, RemovingAUserDropsItsUsageButKeepsEvents) {
  Store s = open();
  const UserId a = s.add_user(user("a", "sa"), 1).value();
  const UsageDelta d[] = {{a, 1, 1, {0, kForever}}};
  ASSERT_TRUE(s.apply_sweep(d, 10));
  ASSERT_TRUE(s.record_event(11, a, "quota_warned", "80%"));
  ASSERT_TRUE(s.remove_user("a"));
  EXPECT_EQ(s.period_usage(a, 0).value(), (Usage{0, 0}));
  auto ev = s.events(std::nullopt, 10).value();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_FALSE(ev[0].user.has_value());
  EXPECT_EQ(s.remove_user("a").error().code, base::Errc::kNotFound);
  // The freed secret can be used again.
  EXPECT_TRUE(s.add_user(user("b", "sa"), 12));
}

TEST_F(StoreTest, EventsAreNewestFirstAndLimited) {
  Store s = open();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(s.record_event(i, std::nullopt, "k", std::to_string(i)));
  auto ev = s.events(std::nullopt, 2).value();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].detail, "4");
  EXPECT_EQ(ev[1].detail, "3");
}

TEST_F(StoreTest, ListUsersReturnsAllInCreationOrder) {
  Store s = open();
  ASSERT_TRUE(s.add_user(user("b", "sb"), 1));
  ASSERT_TRUE(s.add_user(user("a", "sa"), 2));
  auto all = s.list_users().value();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "b");
  EXPECT_EQ(all[1].secrets, std::vector<std::string>{"sa"});
}

}  // namespace
}  // namespace mtw::supervisor
