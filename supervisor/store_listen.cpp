// The store's user-change listener (store_listen.h): libpq in non-blocking
// mode, one LISTEN, notifications collected as they arrive.
#include "supervisor/store_listen.h"

#include <libpq-fe.h>

#include <utility>

#include "supervisor/store_backend.h"

namespace mtw::supervisor {

using base::Errc;
using base::Result;

struct StoreListener::State {
  PGconn* conn = nullptr;
  bool connected = false;  // the handshake finished
  bool listen_sent = false;
  bool subscribed = false;  // the LISTEN's result arrived
  std::vector<std::string> changes;
  ~State() {
    if (conn) PQfinish(conn);
  }
};

namespace {

std::string trimmed(const char* text) {
  std::string s = text ? text : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (char& c : s)
    if (c == '\n') c = ' ';
  return s;
}

base::Error lost(PGconn* c, std::string_view what) {
  return base::Error{Errc::kSyscall, 0,
                     "store listener: " + std::string(what) + ": " + trimmed(PQerrorMessage(c))};
}

}  // namespace

StoreListener::StoreListener(std::unique_ptr<State> s) : s_(std::move(s)) {}
StoreListener::StoreListener(StoreListener&&) noexcept = default;
StoreListener& StoreListener::operator=(StoreListener&&) noexcept = default;
StoreListener::~StoreListener() = default;

Result<StoreListener> StoreListener::start(const StoreConfig& config) {
  if (config.backend != StoreEngine::kPostgresql)
    return base::fail(Errc::kBadInput, "store listener: only a PostgreSQL store notifies");
  if (auto r = check_postgresql_conninfo(config.postgresql); !r)
    return base::fail(Errc::kBadInput, "store listener: postgresql: " + r.error().context);
  std::string password;
  if (!config.password_file.empty()) {
    auto p = read_password_file(config.password_file);
    if (!p) return tl::unexpected(p.error());
    password = std::move(*p);
  }
  const PgConnectParams params(config.postgresql, password);
  auto s = std::make_unique<State>();
  s->conn = PQconnectStartParams(params.keys(), params.values(), 1);
  if (s->conn == nullptr) return base::fail(Errc::kSyscall, "store listener: out of memory");
  if (PQstatus(s->conn) == CONNECTION_BAD) return tl::unexpected(pg_connect_error(s->conn));
  // Notices ("...skipping") carry nothing for an operator (as in the store).
  PQsetNoticeProcessor(
      s->conn, [](void*, const char*) {}, nullptr);
  return StoreListener(std::move(s));
}

int StoreListener::socket() const noexcept { return PQsocket(s_->conn); }

bool StoreListener::subscribed() const noexcept { return s_->subscribed; }

std::vector<std::string> StoreListener::take_changes() { return std::exchange(s_->changes, {}); }

Result<StoreListener::Wait> StoreListener::advance() {
  PGconn* c = s_->conn;
  if (!s_->connected) {
    switch (PQconnectPoll(c)) {
      case PGRES_POLLING_READING:
        return Wait::kRead;
      case PGRES_POLLING_WRITING:
        return Wait::kWrite;
      case PGRES_POLLING_FAILED:
        return tl::unexpected(pg_connect_error(c));
      case PGRES_POLLING_OK:
        break;
      default:  // PGRES_POLLING_ACTIVE: unused by libpq since 7.4; poll again
        return Wait::kWrite;
    }
    s_->connected = true;
    if (PQsetnonblocking(c, 1) != 0) return tl::unexpected(lost(c, "non-blocking mode"));
  }
  if (!s_->listen_sent) {
    // The channel is a constant identifier; nothing from outside is spliced.
    const std::string sql = "LISTEN " + std::string(kUsersChannel);
    if (PQsendQuery(c, sql.c_str()) != 1) return tl::unexpected(lost(c, "LISTEN"));
    s_->listen_sent = true;
  }
  // Whatever is still to be sent (the LISTEN is tiny: normally all at once).
  const int f = PQflush(c);
  if (f < 0) return tl::unexpected(lost(c, "send"));
  if (PQconsumeInput(c) != 1) return tl::unexpected(lost(c, "connection lost"));
  while (PQisBusy(c) == 0) {
    PGresult* r = PQgetResult(c);
    if (r == nullptr) break;
    const ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    if (st == PGRES_COMMAND_OK) {
      s_->subscribed = true;
    } else {
      return tl::unexpected(lost(c, "LISTEN failed"));
    }
  }
  while (PGnotify* n = PQnotifies(c)) {
    if (std::string_view(n->relname) == kUsersChannel) s_->changes.emplace_back(n->extra);
    PQfreemem(n);
  }
  if (PQstatus(c) == CONNECTION_BAD) return tl::unexpected(lost(c, "connection lost"));
  return f == 1 ? Wait::kWrite : Wait::kRead;
}

}  // namespace mtw::supervisor
