// Store: users and their secrets.
#include "supervisor/store.h"
#include "supervisor/store_impl.h"

namespace mtw::supervisor {
namespace {

using base::Errc;
using base::Result;

std::string_view origin_name(UserOrigin o) {
  return o == UserOrigin::kConfig ? "config" : "runtime";
}

// Binds ?1..?17 and ?19 of insert_user / update_user (?6 = created_at).
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
}

template <class T>
std::optional<T> opt(const sql::Stmt& s, int col) {
  auto v = s.column_opt_int(col);
  if (!v) return std::nullopt;
  return static_cast<T>(*v);
}

}  // namespace

Result<StoredUser> Store::Impl::read_user_row(sql::Stmt& s) {
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
  return u;
}

Result<void> Store::Impl::write_secrets(UserId id, const std::vector<std::string>& secrets,
                                        const std::vector<std::optional<UnixSeconds>>& expires) {
  if (auto r = delete_secrets.bind(1, id).run("delete secrets"); !r) return r;
  std::int64_t pos = 0;
  for (const auto& secret : secrets) {
    const std::size_t i = static_cast<std::size_t>(pos);
    const std::optional<UnixSeconds> exp = i < expires.size() ? expires[i] : std::nullopt;
    // The message names the user, never the secret.
    auto r =
        insert_secret.bind(1, secret).bind(2, id).bind(3, pos++).bind(4, exp).run("add secret");
    if (!r) {
      base::Error e = r.error();
      if (e.code == Errc::kExists) e.context = "store: a secret of this user is already in use";
      return tl::unexpected(std::move(e));
    }
  }
  return {};
}

Result<UserId> Store::add_user(const StoredUser& user, UnixSeconds now) {
  if (user.secrets.empty()) return base::fail(Errc::kBadInput, "store: user needs a secret");
  auto tx = sql::Transaction::begin(impl_->db);
  if (!tx) return tl::unexpected(tx.error());
  bind_user(impl_->insert_user, user, now);
  if (auto r = impl_->insert_user.run("add user " + user.name); !r)
    return tl::unexpected(r.error());
  const UserId id = impl_->db.last_insert_id();
  if (auto r = impl_->write_secrets(id, user.secrets, user.secret_expires); !r)
    return tl::unexpected(r.error());
  if (auto r = tx->commit(); !r) return tl::unexpected(r.error());
  return id;
}

Result<void> Store::update_user(const StoredUser& user) {
  if (user.secrets.empty()) return base::fail(Errc::kBadInput, "store: user needs a secret");
  auto tx = sql::Transaction::begin(impl_->db);
  if (!tx) return tl::unexpected(tx.error());
  bind_user(impl_->update_user, user, user.created_at);
  impl_->update_user.bind(18, user.id);
  if (auto r = impl_->update_user.run("update user " + user.name); !r) return r;
  if (impl_->db.changes() == 0)
    return base::fail(Errc::kNotFound, "store: no user with id " + std::to_string(user.id));
  if (auto r = impl_->write_secrets(user.id, user.secrets, user.secret_expires); !r) return r;
  return tx->commit();
}

Result<void> Store::remove_user(std::string_view name) {
  if (auto r = impl_->delete_user.bind(1, name).run("remove user"); !r) return r;
  if (impl_->db.changes() == 0)
    return base::fail(Errc::kNotFound, "store: no user named " + std::string(name));
  return {};
}

Result<std::optional<StoredUser>> Store::find_user(std::string_view name) {
  auto& s = impl_->select_user;
  s.bind(1, name);
  auto row = s.step("find user");
  if (!row) return tl::unexpected(row.error());
  if (!*row) {
    s.reset();
    return std::optional<StoredUser>();
  }
  auto user = impl_->read_user_row(s);
  s.reset();
  if (!user) return tl::unexpected(user.error());
  auto& q = impl_->select_secrets;
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

Result<std::vector<StoredUser>> Store::list_users() {
  std::vector<std::string> names;
  auto& s = impl_->select_users;
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

}  // namespace mtw::supervisor
