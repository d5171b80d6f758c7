// Internal to the store: the connection and its prepared statements, shared
// by store.cpp (schema, usage, events) and store_users.cpp (users).
#pragma once

#include "supervisor/sqlite.h"
#include "supervisor/store.h"

namespace mtw::supervisor {

struct Store::Impl {
  sql::Db db;
  // Prepared once at open and reused: the sweep runs every second.
  sql::Stmt add_period;
  sql::Stmt add_day;
  sql::Stmt set_meta;
  sql::Stmt get_meta;
  sql::Stmt get_period;
  sql::Stmt daily;
  sql::Stmt monthly;
  sql::Stmt delete_period;
  sql::Stmt insert_event;
  sql::Stmt list_events;
  sql::Stmt list_user_events;
  sql::Stmt insert_user;
  sql::Stmt update_user;
  sql::Stmt delete_user;
  sql::Stmt select_user;
  sql::Stmt select_users;
  sql::Stmt insert_secret;
  sql::Stmt delete_secrets;
  sql::Stmt select_secrets;

  [[nodiscard]] base::Result<void> prepare_all();
  [[nodiscard]] base::Result<std::int64_t> insert_event_row(UnixSeconds at,
                                                            std::optional<UserId> user,
                                                            std::string_view kind,
                                                            std::string_view detail);
  [[nodiscard]] base::Result<void> write_secrets(
      UserId id, const std::vector<std::string>& secrets,
      const std::vector<std::optional<UnixSeconds>>& expires);
  [[nodiscard]] base::Result<StoredUser> read_user_row(sql::Stmt& s);
};

// Column list of users in the order read_user_row() expects.
inline constexpr std::string_view kUserColumns =
    "id, name, enabled, expires_at, comment, origin, created_at, rate_up_bps, rate_down_bps, "
    "quota_bytes, period, anchor_day, throttle_bps, warn_percent, max_connections, "
    "max_unique_ips, on_demand, idle_teardown_s, ad_tag";

}  // namespace mtw::supervisor
