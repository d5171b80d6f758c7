#include "supervisor/store.h"
#include "tests/unit/supervisor/store_cases.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

namespace mtw::supervisor {
namespace {

using storetest::StoreCases;

// The shared cases (store_cases.cpp) on SQLite files.
class SqliteTarget : public storetest::StoreTarget {
 public:
  SqliteTarget() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mtw-store-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) != nullptr) dir_ = tmpl;
  }
  ~SqliteTarget() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  base::Result<Store> open(const std::string& host, int schema_version) override {
    return Store::open(dir_ + "/state.db", Store::Options{schema_version, host});
  }
  void exec(const std::string& q) override {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ + "/state.db").c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, q.c_str(), nullptr, nullptr, &err), SQLITE_OK)
        << (err ? err : "") << " in " << q;
    sqlite3_free(err);
    sqlite3_close(db);
  }

 private:
  std::string dir_;
};

INSTANTIATE_TEST_SUITE_P(Engines, StoreCases,
                         ::testing::Values(storetest::StoreParam{
                             "sqlite", [] { return std::make_unique<SqliteTarget>(); }}),
                         storetest::param_name);

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
    auto v1 = Store::open(path_, Store::Options{1, ""});
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

TEST_F(StoreTest, RefusesAFileFromANewerVersion) {
  { Store s = open(); }
  raw_query("PRAGMA user_version = 99");
  auto s = Store::open(path_);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, base::Errc::kInternal);
  EXPECT_NE(s.error().context.find("newer"), std::string::npos);
}

}  // namespace
}  // namespace mtw::supervisor
