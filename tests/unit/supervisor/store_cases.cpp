// Store cases both engines must pass (store_cases.h says how they run).
#include "tests/unit/supervisor/store_cases.h"

#include <thread>
#include <vector>

namespace mtw::supervisor::storetest {
namespace {

TEST_P(StoreCases, SecretsKeepTheirGraceDeadline) {
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

TEST_P(StoreCases, UserRoundTripsWithOverridesAndSecrets) {
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
  u.overrides.bandwidth_weight = 7;
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

// Schema 6: inherit (NULL), direct ('') and a list are three different
// assignments; the password is kept as given.
TEST_P(StoreCases, UpstreamAssignmentRoundTripsInItsThreeForms) {
  Store s = open();
  StoredUser a = user("inherits", "s1");
  StoredUser b = user("direct", "s2");
  b.upstreams = std::vector<std::string>{};
  StoredUser c = user("listed", "s3");
  c.upstreams = std::vector<std::string>{"dante", "micro.2"};
  c.upstream_password = "pw, with a comma";
  for (const auto* u : {&a, &b, &c}) ASSERT_TRUE(s.add_user(*u, 1));
  EXPECT_EQ(s.find_user("inherits").value()->upstreams, std::nullopt);
  EXPECT_EQ(s.find_user("direct").value()->upstreams, std::vector<std::string>{});
  auto got = s.find_user("listed").value();
  EXPECT_EQ(got->upstreams, (std::vector<std::string>{"dante", "micro.2"}));
  EXPECT_EQ(got->upstream_password, "pw, with a comma");
  got->upstreams.reset();
  got->upstream_password.clear();
  ASSERT_TRUE(s.update_user(*got));
  auto list = s.list_users().value();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[2].upstreams, std::nullopt);
  EXPECT_EQ(list[2].upstream_password, "");
  EXPECT_EQ(list[1].upstreams, std::vector<std::string>{});
}

// A version-5 database gains the columns with every user inheriting.
TEST_P(StoreCases, UsersFromSchemaFiveInheritTheirUpstreams) {
  {
    auto v5 = target_->open("h1", 5);
    ASSERT_TRUE(v5) << v5.error().to_string();
  }
  target_->exec("INSERT INTO users(id, name, origin, created_at) VALUES(51, 'old', 'runtime', 1)");
  target_->exec("INSERT INTO secrets(secret, user_id, position) VALUES('so', 51, 0)");
  Store s = open("h1");
  EXPECT_EQ(s.schema_version().value(), kSchemaVersion);
  auto got = s.find_user("old").value();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->upstreams, std::nullopt);
  EXPECT_EQ(got->upstream_password, "");
}

// Schema 7: a weight is kept, and dropping it goes back to NULL (inherit).
TEST_P(StoreCases, BandwidthWeightRoundTripsAndDropsBackToInherit) {
  Store s = open();
  StoredUser a = user("heavy", "s1");
  a.overrides.bandwidth_weight = 1'000;
  ASSERT_TRUE(s.add_user(a, 1));
  ASSERT_TRUE(s.add_user(user("plain", "s2"), 1));
  auto got = s.find_user("heavy").value();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->overrides.bandwidth_weight, std::optional<std::uint32_t>(1'000));
  EXPECT_EQ(s.find_user("plain").value()->overrides.bandwidth_weight, std::nullopt);
  got->overrides.bandwidth_weight = 3;
  ASSERT_TRUE(s.update_user(*got));
  EXPECT_EQ(s.find_user("heavy").value()->overrides.bandwidth_weight,
            std::optional<std::uint32_t>(3));
  got->overrides.bandwidth_weight.reset();
  ASSERT_TRUE(s.update_user(*got));
  auto list = s.list_users().value();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].overrides.bandwidth_weight, std::nullopt);
}

// A version-6 database gains the column with every user inheriting, and its
// other overrides and upstreams kept.
TEST_P(StoreCases, UsersFromSchemaSixInheritTheirBandwidthWeight) {
  {
    auto v6 = target_->open("h1", 6);
    ASSERT_TRUE(v6) << v6.error().to_string();
  }
  target_->exec(
      "INSERT INTO users(id, name, origin, created_at, max_unique_ips, upstreams) "
      "VALUES(61, 'old', 'runtime', 1, 4, 'dante')");
  target_->exec("INSERT INTO secrets(secret, user_id, position) VALUES('so', 61, 0)");
  Store s = open("h1");
  EXPECT_EQ(s.schema_version().value(), kSchemaVersion);
  auto got = s.find_user("old").value();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->overrides.bandwidth_weight, std::nullopt);
  EXPECT_EQ(got->overrides.max_unique_ips, std::optional<std::uint32_t>(4));
  EXPECT_EQ(got->upstreams, std::vector<std::string>{"dante"});
  got->overrides.bandwidth_weight = 2;
  ASSERT_TRUE(s.update_user(*got));
  EXPECT_EQ(s.find_user("old").value()->overrides.bandwidth_weight,
            std::optional<std::uint32_t>(2));
}

TEST_P(StoreCases, DuplicateNameIsExists) {
  Store s = open();
  ASSERT_TRUE(s.add_user(user("alice", "s1"), 1));
  auto r = s.add_user(user("alice", "s2"), 1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, base::Errc::kExists);
}

TEST_P(StoreCases, DuplicateSecretFailsWithoutLeavingTheUserBehind) {
  Store s = open();
  ASSERT_TRUE(s.add_user(user("alice", "s1"), 1));
  auto r = s.add_user(user("bob", "s1"), 1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, base::Errc::kExists);
  EXPECT_EQ(r.error().context.find("s1"), std::string::npos) << "secret must not be echoed";
  EXPECT_FALSE(s.find_user("bob").value().has_value());
}

TEST_P(StoreCases, UpdateChangesLimitsAndSecrets) {
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

TEST_P(StoreCases, SweepAddsToPeriodAndDayTotals) {
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

TEST_P(StoreCases, FailingDeltaRollsBackTheWholeSweep) {
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

TEST_P(StoreCases, ImpossibleDeltaIsRejectedBeforeWriting) {
  Store s = open();
  const UserId a = s.add_user(user("a", "sa"), 1).value();
  const UsageDelta d[] = {{a, std::uint64_t{1} << 63, 0, {0, kForever}}};
  EXPECT_EQ(s.apply_sweep(d, 10).error().code, base::Errc::kBadInput);
  EXPECT_EQ(s.period_usage(a, 0).value(), (Usage{0, 0}));
}

TEST_P(StoreCases, ReopeningKeepsCommittedUsage) {
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

TEST_P(StoreCases, KeepsFourHundredDaysOfHistoryAndPrunesOlder) {
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

TEST_P(StoreCases, PruneKeepsLifetimeUsage) {
  Store s = open();
  const UserId a = s.add_user(user("a", "sa"), 1).value();
  const UsageDelta d[] = {{a, 5, 5, {0, kForever}}};
  ASSERT_TRUE(s.apply_sweep(d, utc(2020, 1, 1)));
  ASSERT_TRUE(s.prune(utc(2030, 1, 1), 400));
  EXPECT_EQ(s.period_usage(a, 0).value(), (Usage{5, 5}));
}

TEST_P(StoreCases, ResetPeriodZeroesUsageKeepsHistoryAndRecordsEvent) {
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

TEST_P(StoreCases, RemovingAUserDropsItsUsageButKeepsEvents) {
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

TEST_P(StoreCases, EventsAreNewestFirstAndLimited) {
  Store s = open();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(s.record_event(i, std::nullopt, "k", std::to_string(i)));
  auto ev = s.events(std::nullopt, 2).value();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].detail, "4");
  EXPECT_EQ(ev[1].detail, "3");
}

TEST_P(StoreCases, ListUsersReturnsAllInCreationOrder) {
  Store s = open();
  ASSERT_TRUE(s.add_user(user("b", "sb"), 1));
  ASSERT_TRUE(s.add_user(user("a", "sa"), 2));
  auto all = s.list_users().value();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "b");
  EXPECT_EQ(all[1].secrets, std::vector<std::string>{"sa"});
}

TEST_P(StoreCases, NumberedSweepAppliedTwiceCountsOnce) {
  Store s = open();
  const UserId a = s.add_user(user("a", "sa"), 1).value();
  const PeriodBounds p{utc(2024, 3, 1), utc(2024, 4, 1)};
  const UsageDelta d[] = {{a, 100, 1000, p}};
  EXPECT_TRUE(s.apply_numbered_sweep(7, d, utc(2024, 3, 2)).value());
  // A retried flush of the same sweep changes nothing, nor does an older one.
  EXPECT_FALSE(s.apply_numbered_sweep(7, d, utc(2024, 3, 2)).value());
  EXPECT_FALSE(s.apply_numbered_sweep(3, d, utc(2024, 3, 2)).value());
  EXPECT_EQ(s.period_usage(a, p.start).value(), (Usage{100, 1000}));
  EXPECT_EQ(s.daily_history(a, p.start, p.end).value().at(0).usage, (Usage{100, 1000}));
  EXPECT_EQ(s.last_sweep_seq().value(), 7u);
  EXPECT_TRUE(s.apply_numbered_sweep(8, d, utc(2024, 3, 2)).value());
  EXPECT_EQ(s.period_usage(a, p.start).value(), (Usage{200, 2000}));
  EXPECT_EQ(s.apply_numbered_sweep(0, d, 1).error().code, base::Errc::kBadInput);
}

TEST_P(StoreCases, SweepNumbersContinueAfterReopening) {
  UserId a = 0;
  const PeriodBounds p{0, kForever};
  const UsageDelta d[] = {{1, 1, 1, p}};
  {
    Store s = open();
    a = s.add_user(user("a", "sa"), 1).value();
    UsageDelta da[] = {d[0]};
    da[0].user = a;
    ASSERT_TRUE(s.apply_sweep(da, 10));
    ASSERT_TRUE(s.apply_sweep(da, 11));
    EXPECT_EQ(s.last_sweep_seq().value(), 2u);
  }
  Store s = open();
  UsageDelta da[] = {d[0]};
  da[0].user = a;
  ASSERT_TRUE(s.apply_sweep(da, 12));
  EXPECT_EQ(s.last_sweep_seq().value(), 3u);
  EXPECT_EQ(s.period_usage(a, 0).value(), (Usage{3, 3}));
}

TEST_P(StoreCases, TwoHostsDeltasAreSummedAndKeptApart) {
  Store h1 = open("h1");
  Store h2 = open("h2");
  EXPECT_EQ(h1.host_name(), "h1");
  // Users are shared: one created through h1 is seen by h2.
  const UserId a = h1.add_user(user("a", "sa"), 1).value();
  ASSERT_TRUE(h2.find_user("a").value().has_value());
  const PeriodBounds p{utc(2024, 3, 1), utc(2024, 4, 1)};
  const UsageDelta d1[] = {{a, 10, 100, p}};
  const UsageDelta d2[] = {{a, 1, 2, p}};
  ASSERT_TRUE(h1.apply_sweep(d1, utc(2024, 3, 5)));
  ASSERT_TRUE(h2.apply_sweep(d2, utc(2024, 3, 5)));
  ASSERT_TRUE(h2.apply_sweep(d2, utc(2024, 3, 6)));
  // Each host numbers its own sweeps.
  EXPECT_EQ(h1.last_sweep_seq().value(), 1u);
  EXPECT_EQ(h2.last_sweep_seq().value(), 2u);
  EXPECT_EQ(h1.last_sweep_at().value(), utc(2024, 3, 5));
  EXPECT_EQ(h2.last_sweep_at().value(), utc(2024, 3, 6));
  EXPECT_EQ(h1.period_usage(a, p.start).value(), (Usage{12, 104}));
  EXPECT_EQ(h2.period_usage(a, p.start).value(), (Usage{12, 104}));
  EXPECT_EQ(h1.period_usage_by_host(a, p.start).value(),
            (std::vector<HostUsage>{{"h1", {10, 100}}, {"h2", {2, 4}}}));
  auto days = h1.daily_history(a, p.start, p.end).value();
  ASSERT_EQ(days.size(), 2u);
  EXPECT_EQ(days[0].usage, (Usage{11, 102}));
  EXPECT_EQ(days[1].usage, (Usage{1, 2}));
  auto months = h2.monthly_history(a, p.start, p.end).value();
  ASSERT_EQ(months.size(), 1u);
  EXPECT_EQ(months[0].usage, (Usage{12, 104}));
  // A reset starts the quota afresh on every host.
  ASSERT_TRUE(h2.reset_period(a, p.start, utc(2024, 3, 7), "api"));
  EXPECT_EQ(h1.period_usage(a, p.start).value(), (Usage{0, 0}));
}

TEST_P(StoreCases, PeriodUsagesReadEveryUsersFleetTotalInKeyOrder) {
  Store h1 = open("h1");
  Store h2 = open("h2");
  const UserId a = h1.add_user(user("a", "sa"), 1).value();
  const UserId b = h1.add_user(user("b", "sb"), 1).value();
  const UserId c = h1.add_user(user("c", "sc"), 1).value();
  const PeriodBounds p{utc(2024, 3, 1), utc(2024, 4, 1)};
  const PeriodBounds q{utc(2024, 4, 1), utc(2024, 5, 1)};
  const UsageDelta d1[] = {{a, 10, 100, p}, {b, 5, 6, p}};
  const UsageDelta d2[] = {{a, 1, 2, p}, {b, 7, 8, q}};
  ASSERT_TRUE(h1.apply_sweep(d1, utc(2024, 3, 5)));
  ASSERT_TRUE(h2.apply_sweep(d2, utc(2024, 3, 5)));
  // a: both hosts summed; b: only its period q's row; c: none; a again in
  // a period without rows. The order is the keys' own.
  const PeriodKey keys[] = {{b, q.start}, {a, p.start}, {c, p.start}, {a, q.start}, {b, p.start}};
  for (Store* s : {&h1, &h2}) {
    auto got = s->period_usages(keys);
    ASSERT_TRUE(got) << got.error().to_string();
    EXPECT_EQ(*got, (std::vector<Usage>{{7, 8}, {11, 102}, {0, 0}, {0, 0}, {5, 6}}));
  }
  EXPECT_TRUE(h1.period_usages({}).value().empty());
  // An unknown user reads as zero, like period_usage.
  const PeriodKey unknown[] = {{c + 1000, p.start}};
  EXPECT_EQ(h1.period_usages(unknown).value(), (std::vector<Usage>{{0, 0}}));
}

TEST_P(StoreCases, ListHostsShowsEveryHostWithItsLastSweep) {
  Store h1 = open("h1");
  Store h2 = open("h2");
  const UserId a = h1.add_user(user("a", "sa"), 1).value();
  const PeriodBounds p{utc(2024, 3, 1), utc(2024, 4, 1)};
  const UsageDelta d[] = {{a, 1, 2, p}};
  ASSERT_TRUE(h2.apply_sweep(d, utc(2024, 3, 5)));
  ASSERT_TRUE(h2.apply_sweep(d, utc(2024, 3, 6)));
  // Both see the same fleet, ordered by name; h1 has not swept yet.
  for (Store* s : {&h1, &h2}) {
    auto hosts = s->list_hosts();
    ASSERT_TRUE(hosts) << hosts.error().to_string();
    ASSERT_EQ(hosts->size(), 2u);
    EXPECT_EQ((*hosts)[0].name, "h1");
    EXPECT_TRUE((*hosts)[0].first_seen.has_value());
    EXPECT_EQ((*hosts)[0].last_sweep_at, std::nullopt);
    EXPECT_EQ((*hosts)[0].last_seq, 0u);
    EXPECT_EQ((*hosts)[1].name, "h2");
    EXPECT_EQ((*hosts)[1].last_sweep_at, utc(2024, 3, 6));
    EXPECT_EQ((*hosts)[1].last_seq, 2u);
  }
}

TEST_P(StoreCases, ASecondWriterUnderTheSameHostNameIsReportedAndLosesNothing) {
  Store first = open("same");
  Store second = open("same");  // both start numbering at 1
  const UserId a = first.add_user(user("a", "sa"), 1).value();
  const UsageDelta d[] = {{a, 5, 5, {0, kForever}}};
  ASSERT_TRUE(first.apply_sweep(d, 10));
  auto clash = second.apply_sweep(d, 10);
  ASSERT_FALSE(clash);
  EXPECT_EQ(clash.error().code, base::Errc::kExists);
  EXPECT_NE(clash.error().context.find("host names must be unique"), std::string::npos);
  EXPECT_EQ(first.period_usage(a, 0).value(), (Usage{5, 5}));
  // The caller passes the kept deltas again: counted once, now.
  ASSERT_TRUE(second.apply_sweep(d, 11));
  EXPECT_EQ(first.period_usage(a, 0).value(), (Usage{10, 10}));
}

TEST_P(StoreCases, RowsFromBeforeHostsWereNamedStillCount) {
  UserId a = 0;
  {
    auto v4 = target_->open("h1", 4);
    ASSERT_TRUE(v4) << v4.error().to_string();
    EXPECT_EQ(v4->schema_version().value(), 4);
  }
  // A version-4 database with one user, usage and a last sweep.
  target_->exec("INSERT INTO users(id, name, origin, created_at) VALUES(41, 'old', 'runtime', 1)");
  target_->exec("INSERT INTO secrets(secret, user_id, position) VALUES('so', 41, 0)");
  target_->exec(
      "INSERT INTO usage_period(user_id, period_start, period_end, bytes_up, bytes_down) "
      "VALUES(41, 0, 9000000000, 7, 8)");
  target_->exec("INSERT INTO usage_daily(user_id, day, bytes_up, bytes_down) VALUES(41, 3, 7, 8)");
  target_->exec("INSERT INTO meta(key, value) VALUES('last_sweep_at', 300000)");
  Store s = open("h1");
  EXPECT_EQ(s.schema_version().value(), kSchemaVersion);
  a = s.find_user("old").value().value().id;
  EXPECT_EQ(a, 41);
  const UsageDelta d[] = {{a, 1, 1, {0, 9000000000}}};
  ASSERT_TRUE(s.apply_sweep(d, 3 * kDay + 5));
  EXPECT_EQ(s.period_usage(a, 0).value(), (Usage{8, 9}));
  EXPECT_EQ(s.period_usage_by_host(a, 0).value(),
            (std::vector<HostUsage>{{"", {7, 8}}, {"h1", {1, 1}}}));
  EXPECT_EQ(s.daily_history(a, 0, 10 * kDay).value().at(0).usage, (Usage{8, 9}));
}

}  // namespace
}  // namespace mtw::supervisor::storetest
