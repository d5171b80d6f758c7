#include "supervisor/sqlite.h"

#include <sqlite3.h>

namespace mtw::supervisor::sql {

base::Error make_error(sqlite3* db, int rc, std::string_view context) {
  base::Error e;
  const int primary = rc & 0xff;
  switch (primary) {
    case SQLITE_CONSTRAINT:
      e.code = rc == SQLITE_CONSTRAINT_FOREIGNKEY ? base::Errc::kNotFound
               : (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
                   ? base::Errc::kExists
                   : base::Errc::kBadInput;
      break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      e.code = base::Errc::kTimeout;
      break;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_READONLY:
      e.code = base::Errc::kSyscall;
      e.sys_errno = db ? sqlite3_system_errno(db) : 0;
      break;
    default:
      e.code = base::Errc::kInternal;
  }
  e.context =
      "store: " + std::string(context) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  return e;
}

void Db::Closer::operator()(sqlite3* db) const noexcept {
  // Statements are finalized by their owners first; close_v2 copes otherwise.
  sqlite3_close_v2(db);
}

Result<Db> Db::open(const std::string& path) {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  Db db;
  db.db_.reset(raw);  // sqlite allocates a handle even on failure; it must be closed
  if (rc != SQLITE_OK) return tl::unexpected(make_error(raw, rc, "open " + path));
  sqlite3_extended_result_codes(raw, 1);
  return db;
}

Result<void> Db::exec(std::string_view sql, std::string_view context) {
  const std::string text(sql);
  const int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return tl::unexpected(make_error(db_.get(), rc, context));
  return {};
}

std::int64_t Db::changes() const noexcept { return sqlite3_changes64(db_.get()); }
std::int64_t Db::last_insert_id() const noexcept { return sqlite3_last_insert_rowid(db_.get()); }

void Stmt::Finalizer::operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }

Result<Stmt> Stmt::prepare(const Db& db, std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v3(db.get(), sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  if (rc != SQLITE_OK)
    return tl::unexpected(make_error(db.get(), rc, "prepare " + std::string(sql)));
  Stmt s;
  s.stmt_.reset(raw);
  return s;
}

// Bind failures (index out of range, out of memory) are programming errors
// or resource exhaustion; they surface as an error from the following step().
Stmt& Stmt::bind(int index, std::int64_t v) {
  sqlite3_bind_int64(stmt_.get(), index, v);
  return *this;
}

Stmt& Stmt::bind(int index, std::string_view v) {
  sqlite3_bind_text(stmt_.get(), index, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}

Stmt& Stmt::bind_null(int index) {
  sqlite3_bind_null(stmt_.get(), index);
  return *this;
}

Result<bool> Stmt::step(std::string_view context) {
  const int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  base::Error e = make_error(sqlite3_db_handle(stmt_.get()), rc, context);
  reset();
  return tl::unexpected(std::move(e));
}

Result<void> Stmt::run(std::string_view context) {
  for (;;) {
    auto r = step(context);
    if (!r) return tl::unexpected(r.error());
    if (!*r) break;
  }
  reset();
  return {};
}

void Stmt::reset() noexcept {
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
}

std::int64_t Stmt::column_int(int col) const noexcept {
  return sqlite3_column_int64(stmt_.get(), col);
}

std::optional<std::int64_t> Stmt::column_opt_int(int col) const noexcept {
  if (sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_int64(stmt_.get(), col);
}

std::string Stmt::column_text(int col) const {
  const auto* p = sqlite3_column_text(stmt_.get(), col);
  const int n = sqlite3_column_bytes(stmt_.get(), col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n))
           : std::string();
}

Result<Transaction> Transaction::begin(Db& db) {
  auto r = db.exec("BEGIN IMMEDIATE", "begin transaction");
  if (!r) return tl::unexpected(r.error());
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_) (void)db_->exec("ROLLBACK", "rollback");  // nothing more to do if it fails
}

Result<void> Transaction::commit() {
  auto r = db_->exec("COMMIT", "commit");
  if (r) db_ = nullptr;
  return r;
}

}  // namespace mtw::supervisor::sql
