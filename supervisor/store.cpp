// Store: the engine-independent part. Picks the backend, checks input, and
// numbers the sweeps so that none is counted twice (store_backend.h).
#include "supervisor/store.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <cctype>
#include <map>

#include "base/unique_fd.h"
#include "supervisor/store_backend.h"

namespace mtw::supervisor {
namespace {

using base::Errc;
using base::Result;

// Deltas above this in one sweep are impossible (4.6 EB/s) and would push
// totals out of signed 64-bit integers.
constexpr std::uint64_t kMaxDelta = std::uint64_t{1} << 62;

std::int64_t day_of(UnixSeconds t) {
  return t >= 0 ? t / kSecondsPerDay : -((-t + kSecondsPerDay - 1) / kSecondsPerDay);
}

}  // namespace

// The first line of the password file. A password is never put in an error.
Result<std::string> read_password_file(const std::string& path) {
  base::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return base::fail_errno("store: read password_file " + path);
  std::string text;
  char buf[1024];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) return base::fail_errno("store: read password_file " + path);
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > 4096)
      return base::fail(Errc::kBadInput, "store: password_file " + path + " is over 4 KiB");
  }
  if (auto nl = text.find('\n'); nl != std::string::npos) text.resize(nl);
  if (!text.empty() && text.back() == '\r') text.pop_back();
  if (text.empty())
    return base::fail(Errc::kBadInput, "store: password_file " + path + " is empty");
  return text;
}

std::string newer_schema_message(int found) {
  return "store: schema version " + std::to_string(found) + " is newer than this mtwarden (" +
         std::to_string(kSchemaVersion) + "); upgrade mtwarden on this host";
}

std::string format_upstream_column(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

std::vector<std::string> parse_upstream_column(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const auto comma = text.find(',');
    out.emplace_back(text.substr(0, comma));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

std::string default_host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  std::string name(buf);
  // A name that the check would refuse (rare: hostnames allow more) is cut
  // to its allowed prefix rather than failing the start.
  std::size_t n = 0;
  while (n < name.size() && n < 64 &&
         (std::isalnum(static_cast<unsigned char>(name[n])) || name[n] == '.' || name[n] == '-' ||
          name[n] == '_'))
    ++n;
  name.resize(n);
  return name.empty() ? "localhost" : name;
}

Result<void> check_host_name(std::string_view name) {
  if (name.empty() || name.size() > 64)
    return base::fail(Errc::kBadInput, "a host name has 1 to 64 characters");
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_')
      return base::fail(Errc::kBadInput, "a host name has only letters, digits, '.', '-', '_'");
  return {};
}

Result<void> check_postgresql_conninfo(const std::string& conninfo) {
  if (conninfo.empty()) return base::fail(Errc::kBadInput, "the connection string is empty");
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (opts == nullptr) {
    std::string why = err ? err : "out of memory";
    PQfreemem(err);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    return base::fail(Errc::kBadInput, "bad connection string: " + why);
  }
  bool has_password = false;
  for (const PQconninfoOption* o = opts; o->keyword != nullptr; ++o)
    if (std::string_view(o->keyword) == "password" && o->val != nullptr && o->val[0] != '\0')
      has_password = true;
  PQconninfoFree(opts);
  if (has_password)
    return base::fail(Errc::kBadInput,
                      "the connection string holds a password: put it in password_file");
  return {};
}

Store::Store(std::unique_ptr<StoreBackend> backend, std::uint64_t last_seq)
    : backend_(std::move(backend)), next_seq_(last_seq + 1) {}
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;
Store::~Store() = default;

Result<Store> Store::open(const std::string& path, Options options) {
  return open(StoreConfig{}, path, std::move(options));
}

Result<Store> Store::open(const StoreConfig& config, const std::string& sqlite_path,
                          Options options) {
  if (options.schema_version < 1 || options.schema_version > kSchemaVersion)
    return base::fail(Errc::kBadInput, "store: schema_version out of range");
  std::string host = !options.host_name.empty()  ? options.host_name
                     : !config.host_name.empty() ? config.host_name
                                                 : default_host_name();
  if (auto r = check_host_name(host); !r)
    return base::fail(Errc::kBadInput, "store: host name \"" + host + "\": " + r.error().context);
  Result<std::unique_ptr<StoreBackend>> backend;
  if (config.backend == StoreEngine::kSqlite) {
    backend = open_sqlite_backend(sqlite_path, options.schema_version, std::move(host));
  } else {
    if (auto r = check_postgresql_conninfo(config.postgresql); !r)
      return base::fail(Errc::kBadInput, "store: postgresql: " + r.error().context);
    std::string password;
    if (!config.password_file.empty()) {
      auto p = read_password_file(config.password_file);
      if (!p) return tl::unexpected(p.error());
      password = std::move(*p);
    }
    backend = open_pg_backend(config.postgresql, password, options.schema_version, std::move(host));
  }
  if (!backend) return tl::unexpected(backend.error());
  auto seq = (*backend)->last_sweep_seq();
  if (!seq) return tl::unexpected(seq.error());
  return Store(std::move(*backend), *seq);
}

Result<int> Store::schema_version() { return backend_->schema_version(); }
const std::string& Store::host_name() const noexcept { return backend_->host_name(); }

Result<UserId> Store::add_user(const StoredUser& user, UnixSeconds now) {
  if (user.secrets.empty()) return base::fail(Errc::kBadInput, "store: user needs a secret");
  return backend_->add_user(user, now);
}

Result<void> Store::update_user(const StoredUser& user) {
  if (user.secrets.empty()) return base::fail(Errc::kBadInput, "store: user needs a secret");
  return backend_->update_user(user);
}

Result<void> Store::remove_user(std::string_view name) { return backend_->remove_user(name); }

Result<std::optional<StoredUser>> Store::find_user(std::string_view name) {
  return backend_->find_user(name);
}

Result<std::vector<StoredUser>> Store::list_users() { return backend_->list_users(); }

Result<bool> Store::apply_numbered_sweep(std::uint64_t seq, std::span<const UsageDelta> deltas,
                                         UnixSeconds now) {
  for (const UsageDelta& d : deltas)
    if (d.bytes_up > kMaxDelta || d.bytes_down > kMaxDelta)
      return base::fail(Errc::kBadInput, "store: sweep delta for user " + std::to_string(d.user) +
                                             " is impossibly large");
  if (seq == 0 || seq > static_cast<std::uint64_t>(INT64_MAX))
    return base::fail(Errc::kBadInput, "store: sweep sequence number out of range");
  return backend_->apply_sweep(seq, deltas, now);
}

Result<void> Store::apply_sweep(std::span<const UsageDelta> deltas, UnixSeconds now) {
  std::vector<UsageDelta> rest;
  if (pending_) {
    // The last call failed; if its commit landed anyway, the caller's
    // deltas still hold its bytes: take them out.
    auto last = backend_->last_sweep_seq();
    if (!last) return tl::unexpected(last.error());
    if (*last >= pending_->seq) {
      std::map<std::pair<UserId, UnixSeconds>, Usage> landed;
      for (const UsageDelta& d : pending_->deltas) {
        Usage& u = landed[{d.user, d.period.start}];
        u.bytes_up += d.bytes_up;
        u.bytes_down += d.bytes_down;
      }
      for (UsageDelta d : deltas) {
        auto it = landed.find({d.user, d.period.start});
        if (it != landed.end()) {
          const std::uint64_t up = std::min(d.bytes_up, it->second.bytes_up);
          const std::uint64_t down = std::min(d.bytes_down, it->second.bytes_down);
          d.bytes_up -= up;
          d.bytes_down -= down;
          it->second.bytes_up -= up;
          it->second.bytes_down -= down;
        }
        rest.push_back(d);
      }
      deltas = rest;
    }
    if (*last >= next_seq_) next_seq_ = *last + 1;
    pending_.reset();
  }
  const std::uint64_t seq = next_seq_++;
  auto r = apply_numbered_sweep(seq, deltas, now);
  if (!r) {
    pending_ = Pending{seq, std::vector<UsageDelta>(deltas.begin(), deltas.end())};
    return tl::unexpected(r.error());
  }
  if (!*r) {
    // Our own numbers are never reused: another process records usage
    // under this host's name. Move past its numbers; the caller keeps the
    // deltas and passes them again.
    auto last = backend_->last_sweep_seq();
    if (last && *last >= next_seq_) next_seq_ = *last + 1;
    return base::fail(Errc::kExists, "store: sweep " + std::to_string(seq) +
                                         " was already recorded: another process records usage "
                                         "as host " +
                                         backend_->host_name() + " (host names must be unique)");
  }
  return {};
}

Result<std::uint64_t> Store::last_sweep_seq() { return backend_->last_sweep_seq(); }

Result<std::optional<UnixSeconds>> Store::last_sweep_at() { return backend_->last_sweep_at(); }

Result<Usage> Store::period_usage(UserId user, UnixSeconds period_start) {
  auto rows = backend_->period_usage_by_host(user, period_start);
  if (!rows) return tl::unexpected(rows.error());
  Usage sum;
  for (const HostUsage& h : *rows) {
    sum.bytes_up += h.usage.bytes_up;
    sum.bytes_down += h.usage.bytes_down;
  }
  return sum;
}

Result<std::vector<Usage>> StoreBackend::period_usages(std::span<const PeriodKey> keys) {
  std::vector<Usage> out;
  out.reserve(keys.size());
  for (const PeriodKey& k : keys) {
    auto rows = period_usage_by_host(k.user, k.period_start);
    if (!rows) return tl::unexpected(rows.error());
    Usage sum;
    for (const HostUsage& h : *rows) {
      sum.bytes_up += h.usage.bytes_up;
      sum.bytes_down += h.usage.bytes_down;
    }
    out.push_back(sum);
  }
  return out;
}

Result<std::vector<Usage>> Store::period_usages(std::span<const PeriodKey> keys) {
  if (keys.empty()) return std::vector<Usage>{};
  return backend_->period_usages(keys);
}

Result<std::vector<HostRecord>> Store::list_hosts() { return backend_->list_hosts(); }

Result<std::vector<HostUsage>> Store::period_usage_by_host(UserId user, UnixSeconds period_start) {
  return backend_->period_usage_by_host(user, period_start);
}

Result<std::vector<DayUsage>> Store::daily_history(UserId user, UnixSeconds from, UnixSeconds to) {
  return backend_->daily_history(user, day_of(from), day_of(to));
}

Result<std::vector<MonthUsage>> Store::monthly_history(UserId user, UnixSeconds from,
                                                       UnixSeconds to) {
  return backend_->monthly_history(user, day_of(from), day_of(to));
}

Result<void> Store::reset_period(UserId user, UnixSeconds period_start, UnixSeconds now,
                                 std::string_view actor) {
  return backend_->reset_period(user, period_start, now, actor);
}

Result<std::uint64_t> Store::prune(UnixSeconds now, std::uint32_t history_days) {
  return backend_->prune(day_of(now) - history_days);
}

Result<std::int64_t> Store::record_event(UnixSeconds at, std::optional<UserId> user,
                                         std::string_view kind, std::string_view detail) {
  return backend_->record_event(at, user, kind, detail);
}

Result<std::vector<Event>> Store::events(std::optional<UserId> user, std::size_t limit) {
  return backend_->events(user, limit);
}

}  // namespace mtw::supervisor
