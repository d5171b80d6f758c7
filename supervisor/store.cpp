// Store: opening, schema migrations, accounting sweeps, history and events.
#include "supervisor/store.h"

#include <fcntl.h>

#include <array>

#include "base/unique_fd.h"
#include "supervisor/store_impl.h"

namespace mtw::supervisor {
namespace {

using base::Errc;
using base::Result;

// Migration N (1-based) brings user_version from N-1 to N. Never edit a
// released entry; append a new one.
constexpr std::array<std::string_view, kSchemaVersion> kMigrations = {
    // 1: the initial schema.
    R"sql(
CREATE TABLE users(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  enabled INTEGER NOT NULL DEFAULT 1,
  expires_at INTEGER,
  comment TEXT NOT NULL DEFAULT '',
  origin TEXT NOT NULL CHECK (origin IN ('config', 'runtime')),
  created_at INTEGER NOT NULL,
  rate_up_bps INTEGER, rate_down_bps INTEGER, quota_bytes INTEGER, period TEXT,
  anchor_day INTEGER, throttle_bps INTEGER, warn_percent INTEGER, max_connections INTEGER,
  max_unique_ips INTEGER, on_demand INTEGER, idle_teardown_s INTEGER);
CREATE TABLE secrets(
  secret TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  position INTEGER NOT NULL);
CREATE INDEX secrets_user ON secrets(user_id);
CREATE TABLE usage_period(
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  period_start INTEGER NOT NULL,
  period_end INTEGER NOT NULL,
  bytes_up INTEGER NOT NULL DEFAULT 0,
  bytes_down INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, period_start)) WITHOUT ROWID;
CREATE TABLE usage_daily(
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  day INTEGER NOT NULL,
  bytes_up INTEGER NOT NULL DEFAULT 0,
  bytes_down INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, day)) WITHOUT ROWID;
CREATE TABLE events(
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
  kind TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '');
CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER);
)sql",
    // 2: indexes for pruning by age and for per-user event listings.
    R"sql(
CREATE INDEX usage_daily_day ON usage_daily(day);
CREATE INDEX events_at ON events(at);
CREATE INDEX events_user_at ON events(user_id, at);
)sql",
    // 3: secrets rotated out keep working until their grace period ends.
    R"sql(
ALTER TABLE secrets ADD COLUMN expires_at INTEGER;
)sql",
    // 4: a user's ad tag (32 hex digits; NULL = the listener's or the default).
    R"sql(
ALTER TABLE users ADD COLUMN ad_tag TEXT;
)sql",
};

// Deltas above this in one sweep are impossible (4.6 EB/s) and would push
// totals out of SQLite's signed 64-bit integers.
constexpr std::uint64_t kMaxDelta = std::uint64_t{1} << 62;
constexpr std::int64_t kSecondsPerDay = 86'400;

std::int64_t day_of(UnixSeconds t) {
  return t >= 0 ? t / kSecondsPerDay : -((-t + kSecondsPerDay - 1) / kSecondsPerDay);
}

Result<int> read_user_version(sql::Db& db) {
  auto s = sql::Stmt::prepare(db, "PRAGMA user_version");
  if (!s) return tl::unexpected(s.error());
  auto row = s->step("read user_version");
  if (!row) return tl::unexpected(row.error());
  return static_cast<int>(s->column_int(0));
}

Result<void> migrate(sql::Db& db, int target) {
  auto current = read_user_version(db);
  if (!current) return tl::unexpected(current.error());
  if (*current > kSchemaVersion)
    return base::fail(Errc::kInternal, "store: schema version " + std::to_string(*current) +
                                           " is newer than this mtwarden (" +
                                           std::to_string(kSchemaVersion) + ")");
  for (int v = *current + 1; v <= target; ++v) {
    auto tx = sql::Transaction::begin(db);
    if (!tx) return tl::unexpected(tx.error());
    const std::string ctx = "migration " + std::to_string(v);
    if (auto r = db.exec(kMigrations[static_cast<std::size_t>(v - 1)], ctx); !r) return r;
    if (auto r = db.exec("PRAGMA user_version = " + std::to_string(v), ctx); !r) return r;
    if (auto r = tx->commit(); !r) return r;
  }
  return {};
}

// SQLite would create the file with the umask's mode; it holds secrets.
Result<void> create_private_file(const std::string& path) {
  if (path.empty() || path == ":memory:" || path.starts_with("file:")) return {};
  base::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return base::fail_errno("store: create " + path);
  return {};
}

}  // namespace

Result<void> Store::Impl::prepare_all() {
  struct Entry {
    sql::Stmt* stmt;
    std::string_view text;
  };
  const std::string one_user_sql =
      "SELECT " + std::string(kUserColumns) + " FROM users WHERE name = ?1";
  const std::string all_users_sql =
      "SELECT " + std::string(kUserColumns) + " FROM users ORDER BY id";
  const Entry entries[] = {
      {&add_period,
       "INSERT INTO usage_period(user_id, period_start, period_end, bytes_up, bytes_down) "
       "VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(user_id, period_start) DO UPDATE SET "
       "bytes_up = bytes_up + excluded.bytes_up, bytes_down = bytes_down + excluded.bytes_down, "
       "period_end = excluded.period_end"},
      {&add_day,
       "INSERT INTO usage_daily(user_id, day, bytes_up, bytes_down) VALUES(?1, ?2, ?3, ?4) "
       "ON CONFLICT(user_id, day) DO UPDATE SET bytes_up = bytes_up + excluded.bytes_up, "
       "bytes_down = bytes_down + excluded.bytes_down"},
      {&set_meta, "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)"},
      {&get_meta, "SELECT value FROM meta WHERE key = ?1"},
      {&get_period,
       "SELECT bytes_up, bytes_down FROM usage_period WHERE user_id = ?1 AND period_start = ?2"},
      {&daily,
       "SELECT day, bytes_up, bytes_down FROM usage_daily WHERE user_id = ?1 AND day >= ?2 "
       "AND day < ?3 ORDER BY day"},
      {&monthly,
       "SELECT CAST(strftime('%Y', day * 86400, 'unixepoch') AS INTEGER) AS y, "
       "CAST(strftime('%m', day * 86400, 'unixepoch') AS INTEGER) AS m, SUM(bytes_up), "
       "SUM(bytes_down) FROM usage_daily WHERE user_id = ?1 AND day >= ?2 AND day < ?3 "
       "GROUP BY y, m ORDER BY y, m"},
      {&delete_period, "DELETE FROM usage_period WHERE user_id = ?1 AND period_start = ?2"},
      {&insert_event, "INSERT INTO events(at, user_id, kind, detail) VALUES(?1, ?2, ?3, ?4)"},
      {&list_events, "SELECT id, at, user_id, kind, detail FROM events ORDER BY id DESC LIMIT ?1"},
      {&list_user_events,
       "SELECT id, at, user_id, kind, detail FROM events WHERE user_id = ?2 "
       "ORDER BY id DESC LIMIT ?1"},
      {&insert_user,
       "INSERT INTO users(name, enabled, expires_at, comment, origin, created_at, rate_up_bps, "
       "rate_down_bps, quota_bytes, period, anchor_day, throttle_bps, warn_percent, "
       "max_connections, max_unique_ips, on_demand, idle_teardown_s, ad_tag) "
       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?19)"},
      {&update_user,
       "UPDATE users SET name = ?1, enabled = ?2, expires_at = ?3, comment = ?4, origin = ?5, "
       "rate_up_bps = ?7, rate_down_bps = ?8, quota_bytes = ?9, period = ?10, anchor_day = ?11, "
       "throttle_bps = ?12, warn_percent = ?13, max_connections = ?14, max_unique_ips = ?15, "
       "on_demand = ?16, idle_teardown_s = ?17, ad_tag = ?19 WHERE id = ?18"},
      {&delete_user, "DELETE FROM users WHERE name = ?1"},
      {&select_user, one_user_sql},
      {&select_users, all_users_sql},
      {&insert_secret,
       "INSERT INTO secrets(secret, user_id, position, expires_at) VALUES(?1, ?2, ?3, ?4)"},
      {&delete_secrets, "DELETE FROM secrets WHERE user_id = ?1"},
      {&select_secrets,
       "SELECT secret, expires_at FROM secrets WHERE user_id = ?1 ORDER BY position"},
  };
  for (const Entry& e : entries) {
    auto s = sql::Stmt::prepare(db, e.text);
    if (!s) return tl::unexpected(s.error());
    *e.stmt = std::move(*s);
  }
  return {};
}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;
Store::~Store() = default;

Result<Store> Store::open(const std::string& path, Options options) {
  if (options.schema_version < 1 || options.schema_version > kSchemaVersion)
    return base::fail(Errc::kBadInput, "store: schema_version out of range");
  if (auto r = create_private_file(path); !r) return tl::unexpected(r.error());
  auto db = sql::Db::open(path);
  if (!db) return tl::unexpected(db.error());
  // WAL: readers (CLI, API) never block the sweep; NORMAL: fsync at
  // checkpoints only, so a process crash loses nothing committed.
  for (std::string_view pragma : {"PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL",
                                  "PRAGMA foreign_keys = ON", "PRAGMA busy_timeout = 2000"})
    if (auto r = db->exec(pragma, pragma); !r) return tl::unexpected(r.error());
  if (auto r = migrate(*db, options.schema_version); !r) return tl::unexpected(r.error());
  auto impl = std::make_unique<Impl>();
  impl->db = std::move(*db);
  if (options.schema_version == kSchemaVersion) {
    if (auto r = impl->prepare_all(); !r) return tl::unexpected(r.error());
  }
  return Store(std::move(impl));
}

Result<int> Store::schema_version() { return read_user_version(impl_->db); }

Result<void> Store::apply_sweep(std::span<const UsageDelta> deltas, UnixSeconds now) {
  for (const UsageDelta& d : deltas)
    if (d.bytes_up > kMaxDelta || d.bytes_down > kMaxDelta)
      return base::fail(Errc::kBadInput, "store: sweep delta for user " + std::to_string(d.user) +
                                             " is impossibly large");
  auto tx = sql::Transaction::begin(impl_->db);
  if (!tx) return tl::unexpected(tx.error());
  const std::int64_t day = day_of(now);
  for (const UsageDelta& d : deltas) {
    if (d.bytes_up == 0 && d.bytes_down == 0) continue;
    const auto up = static_cast<std::int64_t>(d.bytes_up);
    const auto down = static_cast<std::int64_t>(d.bytes_down);
    auto r = impl_->add_period.bind(1, d.user)
                 .bind(2, d.period.start)
                 .bind(3, d.period.end)
                 .bind(4, up)
                 .bind(5, down)
                 .run("sweep: add period usage");
    if (!r) return r;  // ~Transaction rolls back every delta written so far
    r = impl_->add_day.bind(1, d.user).bind(2, day).bind(3, up).bind(4, down).run(
        "sweep: add daily usage");
    if (!r) return r;
  }
  if (auto r = impl_->set_meta.bind(1, std::string_view("last_sweep_at"))
                   .bind(2, now)
                   .run("sweep: record time");
      !r)
    return r;
  return tx->commit();
}

Result<std::optional<UnixSeconds>> Store::last_sweep_at() {
  auto& s = impl_->get_meta;
  s.bind(1, std::string_view("last_sweep_at"));
  auto row = s.step("read last sweep");
  if (!row) return tl::unexpected(row.error());
  std::optional<UnixSeconds> at;
  if (*row) at = s.column_opt_int(0);
  s.reset();
  return at;
}

Result<Usage> Store::period_usage(UserId user, UnixSeconds period_start) {
  auto& s = impl_->get_period;
  s.bind(1, user).bind(2, period_start);
  auto row = s.step("read period usage");
  if (!row) return tl::unexpected(row.error());
  Usage u;
  if (*row)
    u = {static_cast<std::uint64_t>(s.column_int(0)), static_cast<std::uint64_t>(s.column_int(1))};
  s.reset();
  return u;
}

Result<std::vector<DayUsage>> Store::daily_history(UserId user, UnixSeconds from, UnixSeconds to) {
  auto& s = impl_->daily;
  s.bind(1, user).bind(2, day_of(from)).bind(3, day_of(to));
  std::vector<DayUsage> out;
  for (;;) {
    auto row = s.step("read daily history");
    if (!row) return tl::unexpected(row.error());
    if (!*row) break;
    out.push_back({s.column_int(0),
                   {static_cast<std::uint64_t>(s.column_int(1)),
                    static_cast<std::uint64_t>(s.column_int(2))}});
  }
  s.reset();
  return out;
}

Result<std::vector<MonthUsage>> Store::monthly_history(UserId user, UnixSeconds from,
                                                       UnixSeconds to) {
  auto& s = impl_->monthly;
  s.bind(1, user).bind(2, day_of(from)).bind(3, day_of(to));
  std::vector<MonthUsage> out;
  for (;;) {
    auto row = s.step("read monthly history");
    if (!row) return tl::unexpected(row.error());
    if (!*row) break;
    out.push_back({static_cast<int>(s.column_int(0)),
                   static_cast<unsigned>(s.column_int(1)),
                   {static_cast<std::uint64_t>(s.column_int(2)),
                    static_cast<std::uint64_t>(s.column_int(3))}});
  }
  s.reset();
  return out;
}

Result<void> Store::reset_period(UserId user, UnixSeconds period_start, UnixSeconds now,
                                 std::string_view actor) {
  auto tx = sql::Transaction::begin(impl_->db);
  if (!tx) return tl::unexpected(tx.error());
  if (auto r = impl_->delete_period.bind(1, user).bind(2, period_start).run("reset period"); !r)
    return r;
  auto ev = impl_->insert_event_row(
      now, user, "period_reset",
      "period_start=" + std::to_string(period_start) + " by=" + std::string(actor));
  if (!ev) return tl::unexpected(ev.error());
  return tx->commit();
}

Result<std::uint64_t> Store::prune(UnixSeconds now, std::uint32_t history_days) {
  const std::int64_t cutoff_day = day_of(now) - history_days;
  auto tx = sql::Transaction::begin(impl_->db);
  if (!tx) return tl::unexpected(tx.error());
  std::uint64_t removed = 0;
  const std::pair<std::string_view, std::int64_t> deletes[] = {
      {"DELETE FROM usage_daily WHERE day < ?1", cutoff_day},
      // Ended periods only; a lifetime period ends at kForever and stays.
      {"DELETE FROM usage_period WHERE period_end <= ?1", cutoff_day * kSecondsPerDay},
      {"DELETE FROM events WHERE at < ?1", cutoff_day * kSecondsPerDay},
  };
  for (const auto& [text, bound] : deletes) {
    auto s = sql::Stmt::prepare(impl_->db, text);  // daily at most: no need to cache
    if (!s) return tl::unexpected(s.error());
    if (auto r = s->bind(1, bound).run("prune"); !r) return tl::unexpected(r.error());
    removed += static_cast<std::uint64_t>(impl_->db.changes());
  }
  if (auto r = tx->commit(); !r) return tl::unexpected(r.error());
  return removed;
}

Result<std::int64_t> Store::Impl::insert_event_row(UnixSeconds at, std::optional<UserId> user,
                                                   std::string_view kind, std::string_view detail) {
  auto r = insert_event.bind(1, at).bind(2, user).bind(3, kind).bind(4, detail).run("record event");
  if (!r) return tl::unexpected(r.error());
  return db.last_insert_id();
}

Result<std::int64_t> Store::record_event(UnixSeconds at, std::optional<UserId> user,
                                         std::string_view kind, std::string_view detail) {
  return impl_->insert_event_row(at, user, kind, detail);
}

Result<std::vector<Event>> Store::events(std::optional<UserId> user, std::size_t limit) {
  auto& s = user ? impl_->list_user_events : impl_->list_events;
  s.bind(1, static_cast<std::int64_t>(limit));
  if (user) s.bind(2, *user);
  std::vector<Event> out;
  for (;;) {
    auto row = s.step("list events");
    if (!row) return tl::unexpected(row.error());
    if (!*row) break;
    out.push_back({s.column_int(0), s.column_int(1), s.column_opt_int(2), s.column_text(3),
                   s.column_text(4)});
  }
  s.reset();
  return out;
}

}  // namespace mtw::supervisor
