// The store on a real PostgreSQL 15 (Debian's `postgresql`): the shared
// store cases (store_cases.cpp), each on a fresh database, and what only a
// server can show: rejected credentials, a missing database, a schema newer
// than the code, hosts starting together, a connection cut between calls.
// The server runs as the postgres user from a temporary directory, listens
// on 127.0.0.1 inside the test's network namespace (sandbox.cpp), uses
// scram-sha-256, and dies with the test (SIGQUIT on parent death; a fast
// shutdown at exit). Skips only when not root; a missing or failing server
// is a failure: scripts/deps.sh --test installs it.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>
#include <vector>

#include "supervisor/config.h"
#include "supervisor/store.h"
#include "supervisor/store_listen.h"
#include "tests/unit/netns/sandbox.h"
#include "tests/unit/supervisor/store_cases.h"

namespace mtw::supervisor {
namespace {

namespace fs = std::filesystem;
using storetest::StoreCases;

constexpr const char* kPgBin = "/usr/lib/postgresql/15/bin";
constexpr int kPort = 5432;  // the sandbox's own loopback: no clash with the host
constexpr const char* kAdminPassword = "admin-pw-9f3c";
constexpr const char* kAppPassword = "app-pw-51d7";

// Forks, becomes the postgres user, and execs `argv` in `dir` with output
// to `log`. With `die_with_parent`, the child gets SIGQUIT (PostgreSQL's
// immediate shutdown) when this thread ends. Returns the pid, -1 on error.
pid_t spawn_as_postgres(const std::vector<std::string>& argv, const std::string& dir,
                        const std::string& log, bool die_with_parent) {
  const passwd* pw = ::getpwnam("postgres");
  if (pw == nullptr) return -1;
  const uid_t uid = pw->pw_uid;
  const gid_t gid = pw->pw_gid;
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  // Child: only async-signal-safe calls from here.
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
  }
  const int null = ::open("/dev/null", O_RDONLY);
  if (null >= 0) ::dup2(null, 0);
  if (::chdir(dir.c_str()) != 0 || ::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 ||
      ::setuid(uid) != 0)
    ::_exit(126);
  // After setuid: a credential change clears the parent-death signal.
  if (die_with_parent && (::prctl(PR_SET_PDEATHSIG, SIGQUIT) != 0 || ::getppid() != parent))
    ::_exit(126);
  ::execv(args[0], args.data());
  ::_exit(127);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct PgConnCloser {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
using PgConn = std::unique_ptr<PGconn, PgConnCloser>;

// Runs `sql` over a fresh connection; returns "" or the error message.
std::string run_sql(const std::string& conninfo, const std::string& sql) {
  PgConn c(PQconnectdb(conninfo.c_str()));
  if (PQstatus(c.get()) != CONNECTION_OK) return PQerrorMessage(c.get());
  PGresult* r = PQexec(c.get(), sql.c_str());
  const ExecStatusType st = PQresultStatus(r);
  std::string err =
      (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) ? "" : PQerrorMessage(c.get());
  PQclear(r);
  return err;
}

// The first column of the first row of `sql`, or "<error: ...>".
std::string query_one(const std::string& conninfo, const std::string& sql) {
  PgConn c(PQconnectdb(conninfo.c_str()));
  if (PQstatus(c.get()) != CONNECTION_OK) return "<error: " + std::string(PQerrorMessage(c.get()));
  PGresult* r = PQexec(c.get(), sql.c_str());
  std::string out = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0
                        ? PQgetvalue(r, 0, 0)
                        : "<error: " + std::string(PQerrorMessage(c.get()));
  PQclear(r);
  return out;
}

// One server for the whole binary, with a login role `app`.
class PgServer {
 public:
  static PgServer& get() {
    static PgServer s;
    return s;
  }
  const std::string& failure() const { return failure_; }
  std::string conninfo(const std::string& db) const {
    return "host=127.0.0.1 port=" + std::to_string(kPort) + " dbname=" + db + " user=app";
  }
  std::string admin_conninfo(const std::string& db = "postgres") const {
    return "host=127.0.0.1 port=" + std::to_string(kPort) + " dbname=" + db +
           " user=postgres password=" + kAdminPassword;
  }
  std::string app_conninfo(const std::string& db) const {
    return conninfo(db) + " password=" + kAppPassword;
  }
  const std::string& app_password_file() const { return app_pw_file_; }
  const std::string& dir() const { return dir_; }

  ~PgServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGINT);  // fast shutdown
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    if (!dir_.empty()) fs::remove_all(dir_);
  }

 private:
  PgServer() {
    if (!fs::exists(std::string(kPgBin) + "/postgres")) {
      failure_ = "PostgreSQL 15 not installed (apt-get install postgresql; scripts/deps.sh --test)";
      return;
    }
    char tmpl[] = "/tmp/mtw-pg.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      failure_ = "mkdtemp failed";
      return;
    }
    dir_ = tmpl;
    const passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr) {
      failure_ = "no postgres user";
      return;
    }
    if (::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      failure_ = "chown " + dir_ + " failed";
      return;
    }
    const std::string admin_pw = dir_ + "/admin.pw";
    std::ofstream(admin_pw) << kAdminPassword << "\n";
    ::chown(admin_pw.c_str(), pw->pw_uid, pw->pw_gid);
    ::chmod(admin_pw.c_str(), 0600);
    // The app's password file is the store's: root reads it (0600, root's).
    app_pw_file_ = dir_ + "/app.pw";
    std::ofstream(app_pw_file_) << kAppPassword << "\n";
    ::chmod(app_pw_file_.c_str(), 0600);

    const std::string log = dir_ + "/server.log";
    const pid_t init = spawn_as_postgres(
        {std::string(kPgBin) + "/initdb", "-D", dir_ + "/data", "-U", "postgres",
         "--pwfile=" + admin_pw, "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"},
        dir_, dir_ + "/initdb.log", false);
    int status = -1;
    if (init < 0 || ::waitpid(init, &status, 0) != init || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
      failure_ = "initdb failed: " + read_file(dir_ + "/initdb.log");
      return;
    }
    pid_ = spawn_as_postgres({std::string(kPgBin) + "/postgres", "-D", dir_ + "/data", "-c",
                              "listen_addresses=127.0.0.1", "-c", "port=" + std::to_string(kPort),
                              "-c", "unix_socket_directories=" + dir_, "-c", "fsync=off"},
                             dir_, log, true);
    if (pid_ < 0) {
      failure_ = "fork failed";
      return;
    }
    const std::string ping = admin_conninfo();
    bool up = false;
    for (int i = 0; i < 300 && !up; ++i) {
      up = PQping(ping.c_str()) == PQPING_OK;
      if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!up) {
      failure_ = "postgres did not start: " + read_file(log);
      return;
    }
    if (auto e =
            run_sql(ping, std::string("CREATE ROLE app LOGIN PASSWORD '") + kAppPassword + "'");
        !e.empty())
      failure_ = "create role app: " + e;
  }

  std::string failure_;
  std::string dir_;
  std::string app_pw_file_;
  pid_t pid_ = -1;
};

#define MTW_REQUIRE_PG()                                                  \
  do {                                                                    \
    MTW_REQUIRE_SANDBOX();                                                \
    ASSERT_EQ(PgServer::get().failure(), "") << "PostgreSQL test server"; \
  } while (0)

// A fresh database owned by app per test; dropped (with its sessions) after.
class PgTarget : public storetest::StoreTarget {
 public:
  PgTarget() : db_("mtw_t" + std::to_string(counter_++)) {
    auto e = run_sql(PgServer::get().admin_conninfo(), "CREATE DATABASE " + db_ + " OWNER app");
    EXPECT_EQ(e, "") << "create database " << db_;
  }
  ~PgTarget() override {
    (void)run_sql(PgServer::get().admin_conninfo(), "DROP DATABASE " + db_ + " WITH (FORCE)");
  }
  StoreConfig config(const std::string& host) const {
    StoreConfig c;
    c.backend = StoreEngine::kPostgresql;
    c.postgresql = PgServer::get().conninfo(db_);
    c.password_file = PgServer::get().app_password_file();
    c.host_name = host;
    return c;
  }
  base::Result<Store> open(const std::string& host, int schema_version) override {
    return Store::open(config(host), "", Store::Options{schema_version, host});
  }
  void exec(const std::string& sql) override {
    EXPECT_EQ(run_sql(PgServer::get().app_conninfo(db_), sql), "") << sql;
  }
  std::string query(const std::string& sql) const {
    return query_one(PgServer::get().app_conninfo(db_), sql);
  }
  const std::string& db() const { return db_; }

 private:
  static inline std::atomic<int> counter_{0};
  std::string db_;
};

std::unique_ptr<storetest::StoreTarget> make_pg_target() {
  if (!PgServer::get().failure().empty()) {
    ADD_FAILURE() << "PostgreSQL test server: " << PgServer::get().failure();
    return nullptr;
  }
  return std::make_unique<PgTarget>();
}

INSTANTIATE_TEST_SUITE_P(Engines, StoreCases,
                         ::testing::Values(storetest::StoreParam{
                             "postgresql", make_pg_target,
                             [] { return netns::testing::sandbox_skip_reason(); }}),
                         storetest::param_name);

class PgStore : public ::testing::Test {
 protected:
  void SetUp() override {
    MTW_REQUIRE_PG();
    target_ = std::make_unique<PgTarget>();
  }
  std::string write_file(const std::string& name, const std::string& text) {
    const std::string path = PgServer::get().dir() + "/" + name;
    std::ofstream(path) << text;
    ::chmod(path.c_str(), 0600);
    return path;
  }
  std::unique_ptr<PgTarget> target_;
};

TEST_F(PgStore, WrongPasswordIsAClearErrorWithoutThePassword) {
  StoreConfig c = target_->config("h1");
  c.password_file = write_file("wrong.pw", "not-the-password-77\n");
  auto s = Store::open(c, "");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, base::Errc::kPermission) << s.error().to_string();
  EXPECT_NE(s.error().context.find("password authentication failed for user \"app\""),
            std::string::npos)
      << s.error().context;
  EXPECT_EQ(s.error().context.find("not-the-password-77"), std::string::npos);
}

TEST_F(PgStore, MissingPasswordIsAClearError) {
  StoreConfig c = target_->config("h1");
  c.password_file.clear();
  ::setenv("PGPASSFILE", "/nonexistent", 1);  // no ~/.pgpass fallback either
  auto s = Store::open(c, "");
  ::unsetenv("PGPASSFILE");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, base::Errc::kPermission) << s.error().to_string();
}

TEST_F(PgStore, MissingDatabaseIsAClearError) {
  StoreConfig c = target_->config("h1");
  c.postgresql = PgServer::get().conninfo("no_such_db");
  auto s = Store::open(c, "");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, base::Errc::kNotFound) << s.error().to_string();
  EXPECT_NE(s.error().context.find("database \"no_such_db\" does not exist"), std::string::npos)
      << s.error().context;
}

TEST_F(PgStore, UnreachableServerIsAClearError) {
  StoreConfig c = target_->config("h1");
  c.postgresql = "host=127.0.0.1 port=5999 dbname=x user=app connect_timeout=2";
  auto s = Store::open(c, "");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, base::Errc::kSyscall) << s.error().to_string();
  EXPECT_NE(s.error().context.find("Connection refused"), std::string::npos) << s.error().context;
}

TEST_F(PgStore, UnreadablePasswordFileIsAClearError) {
  StoreConfig c = target_->config("h1");
  c.password_file = PgServer::get().dir() + "/missing.pw";
  auto s = Store::open(c, "");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, base::Errc::kSyscall);
  EXPECT_NE(s.error().context.find("password_file " + c.password_file), std::string::npos)
      << s.error().context;
  c.password_file = write_file("empty.pw", "\n");
  s = Store::open(c, "");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, base::Errc::kBadInput);
  EXPECT_NE(s.error().context.find("is empty"), std::string::npos);
}

TEST_F(PgStore, BadConnectionStringIsRefusedBeforeConnecting) {
  StoreConfig c = target_->config("h1");
  c.postgresql = "host=127.0.0.1 dbname='unterminated";
  auto s = Store::open(c, "");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, base::Errc::kBadInput);
  EXPECT_NE(s.error().context.find("bad connection string"), std::string::npos)
      << s.error().context;
  c.postgresql = PgServer::get().app_conninfo(target_->db());  // password inline
  s = Store::open(c, "");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, base::Errc::kBadInput);
  EXPECT_NE(s.error().context.find("password_file"), std::string::npos);
  EXPECT_EQ(s.error().context.find(kAppPassword), std::string::npos);
}

TEST_F(PgStore, SchemaFromANewerVersionIsRefused) {
  { ASSERT_TRUE(target_->open("h1", kSchemaVersion)); }
  target_->exec("INSERT INTO schema_version(version, applied_at, host) VALUES(99, 0, 'future')");
  auto s = target_->open("h1", kSchemaVersion);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, base::Errc::kInternal);
  EXPECT_NE(s.error().context.find("schema version 99 is newer than this mtwarden"),
            std::string::npos)
      << s.error().context;
}

TEST_F(PgStore, HostsOpeningTogetherMigrateOnce) {
  constexpr int kHosts = 4;
  std::vector<std::thread> threads;
  std::vector<std::string> errors(kHosts);
  std::atomic<bool> go{false};
  for (int i = 0; i < kHosts; ++i)
    threads.emplace_back([&, i] {
      while (!go) std::this_thread::yield();
      auto s = target_->open("host" + std::to_string(i), kSchemaVersion);
      if (!s) errors[i] = s.error().to_string();
    });
  go = true;
  for (auto& t : threads) t.join();
  for (int i = 0; i < kHosts; ++i) EXPECT_EQ(errors[i], "") << "host" << i;
  // Each version applied once, by one of them.
  EXPECT_EQ(target_->query("SELECT count(*) FROM schema_version"), std::to_string(kSchemaVersion));
  EXPECT_EQ(target_->query("SELECT count(DISTINCT host) FROM schema_version"), "1");
  EXPECT_EQ(target_->query("SELECT count(*) FROM hosts WHERE name LIKE 'host%'"),
            std::to_string(kHosts));
}

TEST_F(PgStore, AConnectionCutBetweenSweepsIsReestablishedWithoutLoss) {
  auto s = target_->open("h1", kSchemaVersion);
  ASSERT_TRUE(s) << s.error().to_string();
  const UserId a = s->add_user(
                        [] {
                          StoredUser u;
                          u.name = "a";
                          u.secrets = {"sa"};
                          return u;
                        }(),
                        1)
                       .value();
  const UsageDelta d[] = {{a, 3, 4, {0, kForever}}};
  ASSERT_TRUE(s->apply_sweep(d, 10));
  ASSERT_EQ(run_sql(PgServer::get().admin_conninfo(),
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" +
                        target_->db() + "' AND usename = 'app'"),
            "");
  // Until the server has ended it, so that the next call meets the cut.
  for (int i = 0; i < 100 && target_->query("SELECT count(*) FROM pg_stat_activity WHERE "
                                            "datname = '" +
                                            target_->db() + "' AND pid <> pg_backend_pid()") != "0";
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // The call that meets the cut fails; the caller keeps its deltas.
  std::vector<UsageDelta> kept(std::begin(d), std::end(d));
  auto cut = s->apply_sweep(kept, 11);
  ASSERT_FALSE(cut);
  EXPECT_EQ(cut.error().code, base::Errc::kSyscall) << cut.error().to_string();
  kept[0].bytes_up += 1;  // the next sweep's bytes merged in, as the daemon does
  ASSERT_TRUE(s->apply_sweep(kept, 12)) << "reconnects";
  EXPECT_EQ(s->period_usage(a, 0).value(), (Usage{3 + 3 + 1, 4 + 4}));
}

// Drives the listener as the event loop does (poll on its socket for what
// it asks) until `done` holds: true, false after 10 s, or its error.
base::Result<bool> drive(StoreListener& l, StoreListener::Wait& w,
                         const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    pollfd p{l.socket(), static_cast<short>(w == StoreListener::Wait::kRead ? POLLIN : POLLOUT), 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    auto r = l.advance();
    if (!r) return tl::unexpected(r.error());
    w = *r;
  }
  return true;
}

StoredUser named(const std::string& name, const std::string& secret) {
  StoredUser u;
  u.name = name;
  u.secrets = {secret};
  return u;
}

TEST_F(PgStore, AListenerHearsEveryCommittedUserChange) {
  auto s = target_->open("h1", kSchemaVersion);
  ASSERT_TRUE(s) << s.error().to_string();
  auto l = StoreListener::start(target_->config("h2"));
  ASSERT_TRUE(l) << l.error().to_string();
  StoreListener::Wait w = StoreListener::Wait::kWrite;
  auto sub = drive(*l, w, [&] { return l->subscribed(); });
  ASSERT_TRUE(sub && *sub) << (sub ? "timed out" : sub.error().to_string());
  StoredUser a = named("a", "sa");
  a.id = s->add_user(a, 1).value();
  a.comment = "changed";
  ASSERT_TRUE(s->update_user(a));
  ASSERT_TRUE(s->remove_user("a"));
  // Refused (its secret is taken): rolled back, so nothing is heard of it.
  ASSERT_TRUE(s->add_user(named("c", "sc"), 1));
  EXPECT_FALSE(s->add_user(named("b", "sc"), 1));
  EXPECT_FALSE(s->remove_user("nobody"));
  ASSERT_TRUE(s->add_user(named("d", "sd"), 1));
  std::vector<std::string> got;
  auto heard = drive(*l, w, [&] {
    for (auto& n : l->take_changes()) got.push_back(std::move(n));
    return got.size() >= 5;
  });
  ASSERT_TRUE(heard && *heard) << (heard ? "timed out" : heard.error().to_string());
  EXPECT_EQ(got, (std::vector<std::string>{"a", "a", "a", "c", "d"}));
}

TEST_F(PgStore, AListenerReportsItsLostConnection) {
  auto l = StoreListener::start(target_->config("h2"));
  ASSERT_TRUE(l) << l.error().to_string();
  StoreListener::Wait w = StoreListener::Wait::kWrite;
  auto sub = drive(*l, w, [&] { return l->subscribed(); });
  ASSERT_TRUE(sub && *sub) << (sub ? "timed out" : sub.error().to_string());
  ASSERT_EQ(run_sql(PgServer::get().admin_conninfo(),
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" +
                        target_->db() + "' AND usename = 'app'"),
            "");
  auto r = drive(*l, w, [] { return false; });
  ASSERT_FALSE(r) << "the cut is seen";
  EXPECT_EQ(r.error().code, base::Errc::kSyscall);
  EXPECT_NE(r.error().context.find("store listener"), std::string::npos) << r.error().context;
}

TEST_F(PgStore, AListenerWithTheWrongPasswordFailsWithoutThePassword) {
  StoreConfig c = target_->config("h2");
  c.password_file = write_file("listener-wrong.pw", "not-the-password-78\n");
  auto l = StoreListener::start(c);
  ASSERT_TRUE(l) << l.error().to_string();  // connecting happens in advance()
  StoreListener::Wait w = StoreListener::Wait::kWrite;
  auto r = drive(*l, w, [&] { return l->subscribed(); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, base::Errc::kPermission) << r.error().to_string();
  EXPECT_EQ(r.error().context.find("not-the-password-78"), std::string::npos);
}

TEST(StoreListenerConfig, ASqliteStoreHasNoListener) {
  auto l = StoreListener::start(StoreConfig{});
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().code, base::Errc::kBadInput);
}

}  // namespace
}  // namespace mtw::supervisor
