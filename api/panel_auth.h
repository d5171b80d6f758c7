// The web panel's authentication pieces, free of HTTP plumbing so they are
// tested on their own: operator passwords (argon2id), login sessions with
// their CSRF tokens, the per-IP and per-account login limiter, and the
// cookie and Origin checks the panel's handlers apply. Not thread-safe:
// SessionTable and LoginLimiter live on the API's io_context thread like
// the Handler. Secrets (passwords, session ids, CSRF tokens) are never
// logged and are kept only as hashes where they are looked up.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/error.h"

namespace mtw::api {

using PanelClock = std::chrono::steady_clock;

// ---- passwords ----------------------------------------------------------

// 12..1024 bytes; kBadInput naming the rule otherwise.
[[nodiscard]] base::Result<void> check_password_rule(std::string_view password);
// argon2id (libsodium crypto_pwhash_str, "interactive" limits: 2 passes,
// 64 MiB, ~0.1 s on one core of the reference host) in its self-describing
// "$argon2id$v=19$m=...,t=...,p=...$salt$hash" text.
[[nodiscard]] base::Result<std::string> hash_password(std::string_view password);
// Constant time in the password; false for a malformed stored hash.
bool verify_password(std::string_view stored_hash, std::string_view password) noexcept;

// ---- sessions -----------------------------------------------------------

struct SessionLimits {
  std::chrono::seconds idle{30 * 60};        // no request for this long: logged out
  std::chrono::seconds absolute{12 * 3600};  // logged out this long after login, active or not
  std::size_t per_account = 16;              // the oldest is ended beyond this
  std::size_t total = 4096;                  // memory bound over all accounts
};

struct NewSession {
  std::string id;    // the cookie value: 43 base64url characters (32 random bytes)
  std::string csrf;  // the CSRF token the pages send back in X-CSRF-Token
};

struct SessionView {
  std::string account;
  std::string csrf;
};

class SessionTable {
 public:
  explicit SessionTable(SessionLimits limits = {}) : limits_(limits) {}

  // A fresh session for `account` (never reuses an id the client sent:
  // a login always issues a new one, so a planted cookie is worthless).
  NewSession create(std::string_view account, PanelClock::time_point now);
  // The session behind a cookie value, refreshing its idle deadline;
  // nullopt for an unknown, ended or expired one (an expired one is removed).
  std::optional<SessionView> touch(std::string_view id, PanelClock::time_point now);
  // Logout: ends that session. False when it was not there.
  bool end(std::string_view id);
  // Ends every session of `account` (password change, account removal).
  std::size_t end_account(std::string_view account);
  std::size_t size() const noexcept { return by_key_.size(); }

 private:
  struct Entry {
    std::string account;
    std::string csrf;
    PanelClock::time_point created, last_seen;
    std::uint64_t serial;  // creation order, for eviction
  };
  // Sessions are found by a keyed hash of the id, so the table never
  // compares a client's cookie with a stored id byte by byte.
  std::string key_of(std::string_view id) const;
  void evict_oldest(std::string_view account_or_empty);

  SessionLimits limits_;
  std::unordered_map<std::string, Entry> by_key_;
  std::uint64_t next_serial_ = 0;
  std::string hash_key_ = random_key();
  static std::string random_key();
};

// Constant-time comparison of the CSRF token a request carries with its
// session's. An empty or missing token never matches.
bool csrf_matches(std::string_view expected, std::string_view sent) noexcept;

// ---- login limiter --------------------------------------------------------

struct LoginLimits {
  std::uint32_t per_account = 5;     // failed attempts per window for one account name
  std::uint32_t per_source = 20;     // failed attempts per window from one source key
  std::chrono::seconds window{300};  // attempts older than this are forgotten
  std::size_t max_keys = 10'000;     // memory bound; the stalest keys are dropped first
};

// Counts failed logins per account name and per source (the client's IPv4
// address or IPv6 /64, formatted by the caller). While either count is at
// its limit, logins are refused without checking the password, so a
// guesser cannot use the panel as a hashing oracle.
class LoginLimiter {
 public:
  explicit LoginLimiter(LoginLimits limits = {}) : limits_(limits) {}

  // The time until a login may be tried again (0 = may try now).
  std::chrono::seconds retry_after(std::string_view account, std::string_view source,
                                   PanelClock::time_point now);
  void failed(std::string_view account, std::string_view source, PanelClock::time_point now);
  // A successful login clears the account's count (not the source's).
  void succeeded(std::string_view account);
  std::size_t keys() const noexcept { return entries_.size(); }

 private:
  struct Attempts {
    std::deque<PanelClock::time_point> times;
  };
  std::chrono::seconds wait_for(const std::string& key, std::uint32_t limit,
                                PanelClock::time_point now);
  void trim(Attempts& a, PanelClock::time_point now) const;

  LoginLimits limits_;
  std::unordered_map<std::string, Attempts> entries_;  // "a:NAME" or "s:SOURCE"
};

// ---- cookies and origin ---------------------------------------------------

inline constexpr std::string_view kSessionCookie = "mtw_session";

// The Set-Cookie value for a session: HttpOnly, SameSite=Strict, Path=/,
// Max-Age, and Secure when the panel is served over TLS. An empty id with
// max_age 0 clears the cookie (logout).
std::string session_cookie(std::string_view id, std::chrono::seconds max_age, bool secure);
// The value of `name` in a Cookie request header ("a=1; mtw_session=x");
// nullopt when absent, given twice (fixation attempts plant a second one),
// or not 43 base64url characters.
std::optional<std::string_view> find_session_cookie(std::string_view cookie_header);
// A state-changing request must come from the panel's own origin: the
// Origin header (or, when absent, Referer) must be scheme://host[:port] of
// `own_origin` exactly. Both absent = refused.
bool same_origin(std::string_view origin_header, std::string_view referer_header,
                 std::string_view own_origin) noexcept;

}  // namespace mtw::api
