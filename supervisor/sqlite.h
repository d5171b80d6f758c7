// Thin RAII over the SQLite C API for the store: a connection, prepared
// statements (prepared once, reset after each use) and transactions that
// roll back unless committed. Errors come back as Result with SQLite's
// message as context. Not thread-safe: one connection per thread (the store
// is used from the supervisor's io_context thread only).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"

struct sqlite3;
struct sqlite3_stmt;

namespace mtw::supervisor::sql {

using base::Result;

// Maps an SQLite result code to our Errc: UNIQUE -> kExists, FOREIGN KEY ->
// kNotFound, BUSY/LOCKED -> kTimeout, CANTOPEN/IOERR -> kSyscall, else kInternal.
base::Error make_error(sqlite3* db, int rc, std::string_view context);

class Db {
 public:
  // Opens (creating if missing) the database at `path`.
  [[nodiscard]] static Result<Db> open(const std::string& path);
  [[nodiscard]] Result<void> exec(std::string_view sql, std::string_view context);
  sqlite3* get() const noexcept { return db_.get(); }
  // Rows changed by the last INSERT/UPDATE/DELETE; rowid of the last INSERT.
  std::int64_t changes() const noexcept;
  std::int64_t last_insert_id() const noexcept;

 private:
  struct Closer {
    void operator()(sqlite3* db) const noexcept;
  };
  std::unique_ptr<sqlite3, Closer> db_;
};

class Stmt {
 public:
  Stmt() = default;
  // `db` must outlive the statement.
  [[nodiscard]] static Result<Stmt> prepare(const Db& db, std::string_view sql);

  // 1-based parameter indices, as in SQLite.
  Stmt& bind(int index, std::int64_t v);
  Stmt& bind(int index, std::string_view v);  // copied by SQLite (SQLITE_TRANSIENT)
  Stmt& bind_null(int index);
  template <class T>
  Stmt& bind(int index, const std::optional<T>& v) {
    return v ? bind(index, static_cast<std::int64_t>(*v)) : bind_null(index);
  }

  // true: a row is available; false: done. Errors name `context`.
  [[nodiscard]] Result<bool> step(std::string_view context);
  // Runs to completion, ignoring rows; then resets.
  [[nodiscard]] Result<void> run(std::string_view context);
  // Clears bindings and rewinds; call after the last step of a query.
  void reset() noexcept;

  std::int64_t column_int(int col) const noexcept;
  std::optional<std::int64_t> column_opt_int(int col) const noexcept;
  std::string column_text(int col) const;

 private:
  struct Finalizer {
    void operator()(sqlite3_stmt* s) const noexcept;
  };
  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
};

// BEGIN IMMEDIATE on construction (write lock up front, so a commit cannot
// fail with SQLITE_BUSY halfway); ROLLBACK in the destructor unless commit()
// succeeded.
class Transaction {
 public:
  [[nodiscard]] static Result<Transaction> begin(Db& db);
  Transaction(Transaction&& o) noexcept : db_(std::exchange(o.db_, nullptr)) {}
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  [[nodiscard]] Result<void> commit();

 private:
  explicit Transaction(Db* db) : db_(db) {}
  Db* db_;
};

}  // namespace mtw::supervisor::sql
