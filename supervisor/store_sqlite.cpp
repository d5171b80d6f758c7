// The store's SQLite engine: one file, one host (the default backend).
#include <fcntl.h>

#include <array>
#include <ctime>

#include "base/unique_fd.h"
#include "supervisor/sqlite.h"
#include "supervisor/store_backend.h"

namespace mtw::supervisor {
namespace {

using base::Errc;
using base::Result;

// Migration N (1-based) brings user_version from N-1 to N. Never edit a
// released entry; append a new one, and the same version to store_pg.cpp.
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
    // 5: usage per host, and each host's sweep sequence number. Rows from
    // before belong to host '' (and still count: reads sum over hosts).
    // SQLite cannot change a primary key in place: the tables are rebuilt.
    R"sql(
CREATE TABLE hosts(
  name TEXT PRIMARY KEY,
  last_seq INTEGER NOT NULL DEFAULT 0,
  last_sweep_at INTEGER,
  first_seen INTEGER);
INSERT INTO hosts(name, last_sweep_at) SELECT '', value FROM meta WHERE key = 'last_sweep_at';
DELETE FROM meta WHERE key = 'last_sweep_at';
CREATE TABLE usage_period_v5(
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  host TEXT NOT NULL,
  period_start INTEGER NOT NULL,
  period_end INTEGER NOT NULL,
  bytes_up INTEGER NOT NULL DEFAULT 0,
  bytes_down INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, period_start, host)) WITHOUT ROWID;
INSERT INTO usage_period_v5 SELECT user_id, '', period_start, period_end, bytes_up, bytes_down
  FROM usage_period;
DROP TABLE usage_period;
ALTER TABLE usage_period_v5 RENAME TO usage_period;
CREATE TABLE usage_daily_v5(
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  host TEXT NOT NULL,
  day INTEGER NOT NULL,
  bytes_up INTEGER NOT NULL DEFAULT 0,
  bytes_down INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, day, host)) WITHOUT ROWID;
INSERT INTO usage_daily_v5 SELECT user_id, '', day, bytes_up, bytes_down FROM usage_daily;
DROP TABLE usage_daily;
ALTER TABLE usage_daily_v5 RENAME TO usage_daily;
CREATE INDEX usage_daily_day ON usage_daily(day);
)sql",
    // 6: a user's upstreams (NULL = [egress] upstreams, '' = direct, else
    // names joined by ',') and its password for auth = "user-secret".
    R"sql(
ALTER TABLE users ADD COLUMN upstreams TEXT;
ALTER TABLE users ADD COLUMN upstream_password TEXT;
)sql",
    // 7: a user's weight in the split of the host bandwidth budget (NULL =
    // [defaults] bandwidth_weight).
    R"sql(
ALTER TABLE users ADD COLUMN bandwidth_weight INTEGER;
)sql",
};

// Column list of users in the order read_user_row() expects.
constexpr std::string_view kUserColumns =
    "id, name, enabled, expires_at, comment, origin, created_at, rate_up_bps, rate_down_bps, "
    "quota_bytes, period, anchor_day, throttle_bps, warn_percent, max_connections, "
    "max_unique_ips, on_demand, idle_teardown_s, ad_tag, upstreams, upstream_password, "
    "bandwidth_weight";

std::string_view origin_name(UserOrigin o) {
  return o == UserOrigin::kConfig ? "config" : "runtime";
}

// Binds ?1..?17 and ?19..?22 of insert_user / update_user (?6 = created_at).
void bind_user(sql::Stmt& s, const StoredUser& u, UnixSeconds created_at) {
  const LimitOverrides& o = u.overrides;
  s.bind(1, u.name).bind(2, std::int64_t{u.enabled}).bind(3, u.expires_at).bind(4, u.comment);
  s.bind(5, origin_name(u.origin)).bind(6, created_at);
  s.bind(7, o.rate_up_bps).bind(8, o.rate_down_bps).bind(9, o.quota_bytes);
  if (o.period)
    s.bind(10, period_name(*o.period));
  else
    s.bind_null(10);
  s.bind(11, o.anchor_day).bind(12, o.throttle_bps).bind(13, o.warn_percent);
  s.bind(14, o.max_connections).bind(15, o.max_unique_ips);
  if (o.on_demand)
    s.bind(16, std::int64_t{*o.on_demand});
  else
    s.bind_null(16);
  s.bind(17, o.idle_teardown_s);
  if (u.ad_tag.empty())
    s.bind_null(19);
  else
    s.bind(19, u.ad_tag);
  if (u.upstreams)
    s.bind(20, format_upstream_column(*u.upstreams));
  else
    s.bind_null(20);
  if (u.upstream_password.empty())
    s.bind_null(21);
  else
    s.bind(21, u.upstream_password);
  s.bind(22, o.bandwidth_weight);
}

template <class T>
std::optional<T> opt(const sql::Stmt& s, int col) {
  auto v = s.column_opt_int(col);
  if (!v) return std::nullopt;
  return static_cast<T>(*v);
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
  if (*current > kSchemaVersion) return base::fail(Errc::kInternal, newer_schema_message(*current));
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

class SqliteBackend final : public StoreBackend {
 public:
  SqliteBackend(sql::Db db, std::string host) : db_(std::move(db)), host_(std::move(host)) {}

  [[nodiscard]] Result<void> prepare_all();

  const std::string& host_name() const noexcept override { return host_; }
  Result<int> schema_version() override { return read_user_version(db_); }
  Result<UserId> add_user(const StoredUser& user, UnixSeconds now) override;
  Result<void> update_user(const StoredUser& user) override;
  Result<void> remove_user(std::string_view name) override;
  Result<std::optional<StoredUser>> find_user(std::string_view name) override;
  Result<std::vector<StoredUser>> list_users() override;
  Result<bool> apply_sweep(std::uint64_t seq, std::span<const UsageDelta> deltas,
                           UnixSeconds now) override;
  Result<std::uint64_t> last_sweep_seq() override;
  Result<std::optional<UnixSeconds>> last_sweep_at() override;
  Result<std::vector<HostRecord>> list_hosts() override;
  Result<std::vector<HostUsage>> period_usage_by_host(UserId user,
                                                      UnixSeconds period_start) override;
  Result<std::vector<DayUsage>> daily_history(UserId user, std::int64_t from_day,
                                              std::int64_t to_day) override;
  Result<std::vector<MonthUsage>> monthly_history(UserId user, std::int64_t from_day,
                                                  std::int64_t to_day) override;
  Result<void> reset_period(UserId user, UnixSeconds period_start, UnixSeconds now,
                            std::string_view actor) override;
  Result<std::uint64_t> prune(std::int64_t cutoff_day) override;
  Result<std::int64_t> record_event(UnixSeconds at, std::optional<UserId> user,
                                    std::string_view kind, std::string_view detail) override;
  Result<std::vector<Event>> events(std::optional<UserId> user, std::size_t limit) override;

 private:
  [[nodiscard]] Result<void> write_secrets(UserId id, const std::vector<std::string>& secrets,
                                           const std::vector<std::optional<UnixSeconds>>& expires);
  [[nodiscard]] Result<StoredUser> read_user_row(sql::Stmt& s);
  // This host's (last_seq, last_sweep_at).
  [[nodiscard]] Result<std::pair<std::uint64_t, std::optional<UnixSeconds>>> host_row();

  sql::Db db_;
  std::string host_;
  // Prepared once at open and reused: the sweep runs every second.
  sql::Stmt add_period_;
  sql::Stmt add_day_;
  sql::Stmt get_host_;
  sql::Stmt set_host_;
  sql::Stmt list_hosts_;
  sql::Stmt get_period_;
  sql::Stmt daily_;
  sql::Stmt monthly_;
  sql::Stmt delete_period_;
  sql::Stmt insert_event_;
  sql::Stmt list_events_;
  sql::Stmt list_user_events_;
  sql::Stmt insert_user_;
  sql::Stmt update_user_;
  sql::Stmt delete_user_;
  sql::Stmt select_user_;
  sql::Stmt select_users_;
  sql::Stmt insert_secret_;
  sql::Stmt delete_secrets_;
  sql::Stmt select_secrets_;
};

Result<void> SqliteBackend::prepare_all() {
  struct Entry {
    sql::Stmt* stmt;
    std::string_view text;
  };
  const std::string one_user_sql =
      "SELECT " + std::string(kUserColumns) + " FROM users WHERE name = ?1";
  const std::string all_users_sql =
      "SELECT " + std::string(kUserColumns) + " FROM users ORDER BY id";
  const Entry entries[] = {
      {&add_period_,
       "INSERT INTO usage_period(user_id, host, period_start, period_end, bytes_up, bytes_down) "
       "VALUES(?1, ?6, ?2, ?3, ?4, ?5) ON CONFLICT(user_id, period_start, host) DO UPDATE SET "
       "bytes_up = bytes_up + excluded.bytes_up, bytes_down = bytes_down + excluded.bytes_down, "
       "period_end = excluded.period_end"},
      {&add_day_,
       "INSERT INTO usage_daily(user_id, host, day, bytes_up, bytes_down) "
       "VALUES(?1, ?5, ?2, ?3, ?4) ON CONFLICT(user_id, day, host) DO UPDATE SET "
       "bytes_up = bytes_up + excluded.bytes_up, bytes_down = bytes_down + excluded.bytes_down"},
      {&get_host_, "SELECT last_seq, last_sweep_at FROM hosts WHERE name = ?1"},
      {&set_host_, "UPDATE hosts SET last_seq = ?2, last_sweep_at = ?3 WHERE name = ?1"},
      {&list_hosts_, "SELECT name, first_seen, last_sweep_at, last_seq FROM hosts ORDER BY name"},
      {&get_period_,
       "SELECT host, bytes_up, bytes_down FROM usage_period WHERE user_id = ?1 AND "
       "period_start = ?2 ORDER BY host"},
      {&daily_,
       "SELECT day, SUM(bytes_up), SUM(bytes_down) FROM usage_daily WHERE user_id = ?1 AND "
       "day >= ?2 AND day < ?3 GROUP BY day ORDER BY day"},
      {&monthly_,
       "SELECT CAST(strftime('%Y', day * 86400, 'unixepoch') AS INTEGER) AS y, "
       "CAST(strftime('%m', day * 86400, 'unixepoch') AS INTEGER) AS m, SUM(bytes_up), "
       "SUM(bytes_down) FROM usage_daily WHERE user_id = ?1 AND day >= ?2 AND day < ?3 "
       "GROUP BY y, m ORDER BY y, m"},
      {&delete_period_, "DELETE FROM usage_period WHERE user_id = ?1 AND period_start = ?2"},
      {&insert_event_, "INSERT INTO events(at, user_id, kind, detail) VALUES(?1, ?2, ?3, ?4)"},
      {&list_events_, "SELECT id, at, user_id, kind, detail FROM events ORDER BY id DESC LIMIT ?1"},
      {&list_user_events_,
       "SELECT id, at, user_id, kind, detail FROM events WHERE user_id = ?2 "
       "ORDER BY id DESC LIMIT ?1"},
      {&insert_user_,
       "INSERT INTO users(name, enabled, expires_at, comment, origin, created_at, rate_up_bps, "
       "rate_down_bps, quota_bytes, period, anchor_day, throttle_bps, warn_percent, "
       "max_connections, max_unique_ips, on_demand, idle_teardown_s, ad_tag, upstreams, "
       "upstream_password, bandwidth_weight) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
       "?12, ?13, ?14, ?15, ?16, ?17, ?19, ?20, ?21, ?22)"},
      {&update_user_,
       "UPDATE users SET name = ?1, enabled = ?2, expires_at = ?3, comment = ?4, origin = ?5, "
       "rate_up_bps = ?7, rate_down_bps = ?8, quota_bytes = ?9, period = ?10, anchor_day = ?11, "
       "throttle_bps = ?12, warn_percent = ?13, max_connections = ?14, max_unique_ips = ?15, "
       "on_demand = ?16, idle_teardown_s = ?17, ad_tag = ?19, upstreams = ?20, "
       "upstream_password = ?21, bandwidth_weight = ?22 WHERE id = ?18"},
      {&delete_user_, "DELETE FROM users WHERE name = ?1"},
      {&select_user_, one_user_sql},
      {&select_users_, all_users_sql},
      {&insert_secret_,
       "INSERT INTO secrets(secret, user_id, position, expires_at) VALUES(?1, ?2, ?3, ?4)"},
      {&delete_secrets_, "DELETE FROM secrets WHERE user_id = ?1"},
      {&select_secrets_,
       "SELECT secret, expires_at FROM secrets WHERE user_id = ?1 ORDER BY position"},
  };
  for (const Entry& e : entries) {
    auto s = sql::Stmt::prepare(db_, e.text);
    if (!s) return tl::unexpected(s.error());
    *e.stmt = std::move(*s);
  }
  // This host's row, so that a sweep only updates it.
  auto ins = sql::Stmt::prepare(
      db_, "INSERT INTO hosts(name, first_seen) VALUES(?1, ?2) ON CONFLICT(name) DO NOTHING");
  if (!ins) return tl::unexpected(ins.error());
  return ins->bind(1, host_).bind(2, static_cast<std::int64_t>(std::time(nullptr))).run("add host");
}

// ------------------------------------------------------------------ users

Result<StoredUser> SqliteBackend::read_user_row(sql::Stmt& s) {
  StoredUser u;
  u.id = s.column_int(0);
  u.name = s.column_text(1);
  u.enabled = s.column_int(2) != 0;
  u.expires_at = s.column_opt_int(3);
  u.comment = s.column_text(4);
  u.origin = s.column_text(5) == "config" ? UserOrigin::kConfig : UserOrigin::kRuntime;
  u.created_at = s.column_int(6);
  LimitOverrides& o = u.overrides;
  o.rate_up_bps = opt<std::uint64_t>(s, 7);
  o.rate_down_bps = opt<std::uint64_t>(s, 8);
  o.quota_bytes = opt<std::uint64_t>(s, 9);
  if (s.column_opt_int(10)) {
    // column_opt_int only tests for NULL; the column holds the period's name.
    auto p = parse_period(s.column_text(10));
    if (!p) return base::fail(Errc::kInternal, "store: user " + u.name + ": " + p.error().context);
    o.period = *p;
  }
  o.anchor_day = opt<int>(s, 11);
  o.throttle_bps = opt<std::uint64_t>(s, 12);
  o.warn_percent = opt<int>(s, 13);
  o.max_connections = opt<std::uint32_t>(s, 14);
  o.max_unique_ips = opt<std::uint32_t>(s, 15);
  if (auto v = s.column_opt_int(16)) o.on_demand = *v != 0;
  o.idle_teardown_s = opt<std::uint32_t>(s, 17);
  if (s.column_opt_int(18)) u.ad_tag = s.column_text(18);  // column_opt_int: NULL test only
  if (s.column_opt_int(19)) u.upstreams = parse_upstream_column(s.column_text(19));
  if (s.column_opt_int(20)) u.upstream_password = s.column_text(20);
  o.bandwidth_weight = opt<std::uint32_t>(s, 21);
  return u;
}

Result<void> SqliteBackend::write_secrets(UserId id, const std::vector<std::string>& secrets,
                                          const std::vector<std::optional<UnixSeconds>>& expires) {
  if (auto r = delete_secrets_.bind(1, id).run("delete secrets"); !r) return r;
  std::int64_t pos = 0;
  for (const auto& secret : secrets) {
    const std::size_t i = static_cast<std::size_t>(pos);
    const std::optional<UnixSeconds> exp = i < expires.size() ? expires[i] : std::nullopt;
    // The message names the user, never the secret.
    auto r =
        insert_secret_.bind(1, secret).bind(2, id).bind(3, pos++).bind(4, exp).run("add secret");
    if (!r) {
      base::Error e = r.error();
      if (e.code == Errc::kExists) e.context = "store: a secret of this user is already in use";
      return tl::unexpected(std::move(e));
    }
  }
  return {};
}

Result<UserId> SqliteBackend::add_user(const StoredUser& user, UnixSeconds now) {
  auto tx = sql::Transaction::begin(db_);
  if (!tx) return tl::unexpected(tx.error());
  bind_user(insert_user_, user, now);
  if (auto r = insert_user_.run("add user " + user.name); !r) return tl::unexpected(r.error());
  const UserId id = db_.last_insert_id();
  if (auto r = write_secrets(id, user.secrets, user.secret_expires); !r)
    return tl::unexpected(r.error());
  if (auto r = tx->commit(); !r) return tl::unexpected(r.error());
  return id;
}

Result<void> SqliteBackend::update_user(const StoredUser& user) {
  auto tx = sql::Transaction::begin(db_);
  if (!tx) return tl::unexpected(tx.error());
  bind_user(update_user_, user, user.created_at);
  update_user_.bind(18, user.id);
  if (auto r = update_user_.run("update user " + user.name); !r) return r;
  if (db_.changes() == 0)
    return base::fail(Errc::kNotFound, "store: no user with id " + std::to_string(user.id));
  if (auto r = write_secrets(user.id, user.secrets, user.secret_expires); !r) return r;
  return tx->commit();
}

Result<void> SqliteBackend::remove_user(std::string_view name) {
  if (auto r = delete_user_.bind(1, name).run("remove user"); !r) return r;
  if (db_.changes() == 0)
    return base::fail(Errc::kNotFound, "store: no user named " + std::string(name));
  return {};
}

Result<std::optional<StoredUser>> SqliteBackend::find_user(std::string_view name) {
  auto& s = select_user_;
  s.bind(1, name);
  auto row = s.step("find user");
  if (!row) return tl::unexpected(row.error());
  if (!*row) {
    s.reset();
    return std::optional<StoredUser>();
  }
  auto user = read_user_row(s);
  s.reset();
  if (!user) return tl::unexpected(user.error());
  auto& q = select_secrets_;
  q.bind(1, user->id);
  for (;;) {
    auto r = q.step("read secrets");
    if (!r) return tl::unexpected(r.error());
    if (!*r) break;
    user->secrets.push_back(q.column_text(0));
    user->secret_expires.push_back(q.column_opt_int(1));
  }
  q.reset();
  return std::optional<StoredUser>(std::move(*user));
}

Result<std::vector<StoredUser>> SqliteBackend::list_users() {
  std::vector<std::string> names;
  auto& s = select_users_;
  for (;;) {
    auto row = s.step("list users");
    if (!row) return tl::unexpected(row.error());
    if (!*row) break;
    names.push_back(s.column_text(1));
  }
  s.reset();
  std::vector<StoredUser> out;
  out.reserve(names.size());
  for (const auto& n : names) {
    auto u = find_user(n);
    if (!u) return tl::unexpected(u.error());
    if (*u) out.push_back(std::move(**u));
  }
  return out;
}

// ------------------------------------------------------------------ usage

Result<std::pair<std::uint64_t, std::optional<UnixSeconds>>> SqliteBackend::host_row() {
  auto& s = get_host_;
  s.bind(1, host_);
  auto row = s.step("read host");
  if (!row) return tl::unexpected(row.error());
  std::pair<std::uint64_t, std::optional<UnixSeconds>> out{0, std::nullopt};
  if (*row) out = {static_cast<std::uint64_t>(s.column_int(0)), s.column_opt_int(1)};
  s.reset();
  return out;
}

Result<bool> SqliteBackend::apply_sweep(std::uint64_t seq, std::span<const UsageDelta> deltas,
                                        UnixSeconds now) {
  auto tx = sql::Transaction::begin(db_);  // BEGIN IMMEDIATE: the seq check holds till commit
  if (!tx) return tl::unexpected(tx.error());
  auto host = host_row();
  if (!host) return tl::unexpected(host.error());
  if (seq <= host->first) return false;
  const std::int64_t day =
      now >= 0 ? now / kSecondsPerDay : -((-now + kSecondsPerDay - 1) / kSecondsPerDay);
  for (const UsageDelta& d : deltas) {
    if (d.bytes_up == 0 && d.bytes_down == 0) continue;
    const auto up = static_cast<std::int64_t>(d.bytes_up);
    const auto down = static_cast<std::int64_t>(d.bytes_down);
    auto r = add_period_.bind(1, d.user)
                 .bind(2, d.period.start)
                 .bind(3, d.period.end)
                 .bind(4, up)
                 .bind(5, down)
                 .bind(6, host_)
                 .run("sweep: add period usage");
    if (!r) return tl::unexpected(r.error());  // ~Transaction rolls back what was written
    r = add_day_.bind(1, d.user).bind(2, day).bind(3, up).bind(4, down).bind(5, host_).run(
        "sweep: add daily usage");
    if (!r) return tl::unexpected(r.error());
  }
  if (auto r = set_host_.bind(1, host_)
                   .bind(2, static_cast<std::int64_t>(seq))
                   .bind(3, now)
                   .run("sweep: record sequence");
      !r)
    return tl::unexpected(r.error());
  if (auto r = tx->commit(); !r) return tl::unexpected(r.error());
  return true;
}

Result<std::uint64_t> SqliteBackend::last_sweep_seq() {
  auto h = host_row();
  if (!h) return tl::unexpected(h.error());
  return h->first;
}

Result<std::optional<UnixSeconds>> SqliteBackend::last_sweep_at() {
  auto h = host_row();
  if (!h) return tl::unexpected(h.error());
  return h->second;
}

Result<std::vector<HostRecord>> SqliteBackend::list_hosts() {
  auto& s = list_hosts_;
  std::vector<HostRecord> out;
  for (;;) {
    auto row = s.step("list hosts");
    if (!row) return tl::unexpected(row.error());
    if (!*row) break;
    out.push_back({s.column_text(0), s.column_opt_int(1), s.column_opt_int(2),
                   static_cast<std::uint64_t>(s.column_int(3))});
  }
  s.reset();
  return out;
}

Result<std::vector<HostUsage>> SqliteBackend::period_usage_by_host(UserId user,
                                                                   UnixSeconds period_start) {
  auto& s = get_period_;
  s.bind(1, user).bind(2, period_start);
  std::vector<HostUsage> out;
  for (;;) {
    auto row = s.step("read period usage");
    if (!row) return tl::unexpected(row.error());
    if (!*row) break;
    out.push_back({s.column_text(0),
                   {static_cast<std::uint64_t>(s.column_int(1)),
                    static_cast<std::uint64_t>(s.column_int(2))}});
  }
  s.reset();
  return out;
}

Result<std::vector<DayUsage>> SqliteBackend::daily_history(UserId user, std::int64_t from_day,
                                                           std::int64_t to_day) {
  auto& s = daily_;
  s.bind(1, user).bind(2, from_day).bind(3, to_day);
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

Result<std::vector<MonthUsage>> SqliteBackend::monthly_history(UserId user, std::int64_t from_day,
                                                               std::int64_t to_day) {
  auto& s = monthly_;
  s.bind(1, user).bind(2, from_day).bind(3, to_day);
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

Result<void> SqliteBackend::reset_period(UserId user, UnixSeconds period_start, UnixSeconds now,
                                         std::string_view actor) {
  auto tx = sql::Transaction::begin(db_);
  if (!tx) return tl::unexpected(tx.error());
  if (auto r = delete_period_.bind(1, user).bind(2, period_start).run("reset period"); !r) return r;
  auto ev =
      record_event(now, user, "period_reset",
                   "period_start=" + std::to_string(period_start) + " by=" + std::string(actor));
  if (!ev) return tl::unexpected(ev.error());
  return tx->commit();
}

Result<std::uint64_t> SqliteBackend::prune(std::int64_t cutoff_day) {
  auto tx = sql::Transaction::begin(db_);
  if (!tx) return tl::unexpected(tx.error());
  std::uint64_t removed = 0;
  const std::pair<std::string_view, std::int64_t> deletes[] = {
      {"DELETE FROM usage_daily WHERE day < ?1", cutoff_day},
      // Ended periods only; a lifetime period ends at kForever and stays.
      {"DELETE FROM usage_period WHERE period_end <= ?1", cutoff_day * kSecondsPerDay},
      {"DELETE FROM events WHERE at < ?1", cutoff_day * kSecondsPerDay},
  };
  for (const auto& [text, bound] : deletes) {
    auto s = sql::Stmt::prepare(db_, text);  // daily at most: no need to cache
    if (!s) return tl::unexpected(s.error());
    if (auto r = s->bind(1, bound).run("prune"); !r) return tl::unexpected(r.error());
    removed += static_cast<std::uint64_t>(db_.changes());
  }
  if (auto r = tx->commit(); !r) return tl::unexpected(r.error());
  return removed;
}

Result<std::int64_t> SqliteBackend::record_event(UnixSeconds at, std::optional<UserId> user,
                                                 std::string_view kind, std::string_view detail) {
  auto r =
      insert_event_.bind(1, at).bind(2, user).bind(3, kind).bind(4, detail).run("record event");
  if (!r) return tl::unexpected(r.error());
  return db_.last_insert_id();
}

Result<std::vector<Event>> SqliteBackend::events(std::optional<UserId> user, std::size_t limit) {
  auto& s = user ? list_user_events_ : list_events_;
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

// A store migrated to an older version (tests of the migration path) can
// only report its version; every other call fails.
class OldSchemaSqlite final : public StoreBackend {
 public:
  OldSchemaSqlite(sql::Db db, std::string host) : db_(std::move(db)), host_(std::move(host)) {}
  const std::string& host_name() const noexcept override { return host_; }
  Result<int> schema_version() override { return read_user_version(db_); }
  Result<UserId> add_user(const StoredUser&, UnixSeconds) override { return old(); }
  Result<void> update_user(const StoredUser&) override { return old(); }
  Result<void> remove_user(std::string_view) override { return old(); }
  Result<std::optional<StoredUser>> find_user(std::string_view) override { return old(); }
  Result<std::vector<StoredUser>> list_users() override { return old(); }
  Result<bool> apply_sweep(std::uint64_t, std::span<const UsageDelta>, UnixSeconds) override {
    return old();
  }
  Result<std::uint64_t> last_sweep_seq() override { return std::uint64_t{0}; }
  Result<std::optional<UnixSeconds>> last_sweep_at() override { return old(); }
  Result<std::vector<HostRecord>> list_hosts() override { return old(); }
  Result<std::vector<HostUsage>> period_usage_by_host(UserId, UnixSeconds) override {
    return old();
  }
  Result<std::vector<DayUsage>> daily_history(UserId, std::int64_t, std::int64_t) override {
    return old();
  }
  Result<std::vector<MonthUsage>> monthly_history(UserId, std::int64_t, std::int64_t) override {
    return old();
  }
  Result<void> reset_period(UserId, UnixSeconds, UnixSeconds, std::string_view) override {
    return old();
  }
  Result<std::uint64_t> prune(std::int64_t) override { return old(); }
  Result<std::int64_t> record_event(UnixSeconds, std::optional<UserId>, std::string_view,
                                    std::string_view) override {
    return old();
  }
  Result<std::vector<Event>> events(std::optional<UserId>, std::size_t) override { return old(); }

 private:
  static tl::unexpected<base::Error> old() {
    return base::fail(Errc::kInternal, "store: opened at an older schema version (tests only)");
  }
  sql::Db db_;
  std::string host_;
};

}  // namespace

Result<std::unique_ptr<StoreBackend>> open_sqlite_backend(const std::string& path,
                                                          int schema_version,
                                                          std::string host_name) {
  if (auto r = create_private_file(path); !r) return tl::unexpected(r.error());
  auto db = sql::Db::open(path);
  if (!db) return tl::unexpected(db.error());
  // WAL: readers (CLI, API) never block the sweep; NORMAL: fsync at
  // checkpoints only, so a process crash loses nothing committed.
  for (std::string_view pragma : {"PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL",
                                  "PRAGMA foreign_keys = ON", "PRAGMA busy_timeout = 2000"})
    if (auto r = db->exec(pragma, pragma); !r) return tl::unexpected(r.error());
  if (auto r = migrate(*db, schema_version); !r) return tl::unexpected(r.error());
  if (schema_version != kSchemaVersion)
    return std::make_unique<OldSchemaSqlite>(std::move(*db), std::move(host_name));
  auto backend = std::make_unique<SqliteBackend>(std::move(*db), std::move(host_name));
  if (auto r = backend->prepare_all(); !r) return tl::unexpected(r.error());
  return backend;
}

}  // namespace mtw::supervisor
