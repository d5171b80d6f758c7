#include "api/panel_auth.h"

#include <sodium.h>

#include <algorithm>
#include <mutex>
#include <vector>

namespace mtw::api {
namespace {

void sodium_ready() {
  // sodium_init is itself thread-safe and idempotent; the flag only saves
  // the call. A failure (no entropy source) leaves nothing usable.
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) std::abort();
  });
}

std::string random_token(std::size_t bytes) {
  sodium_ready();
  std::vector<unsigned char> raw(bytes);
  randombytes_buf(raw.data(), raw.size());
  std::string out(sodium_base64_ENCODED_LEN(bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), raw.data(), raw.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.size() - 1);  // the terminating NUL
  sodium_memzero(raw.data(), raw.size());
  return out;
}

bool base64url_token(std::string_view s) noexcept {
  if (s.size() != 43) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_'))
      return false;
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

// ---- passwords ------------------------------------------------------------

base::Result<void> check_password_rule(std::string_view password) {
  if (password.size() < 12)
    return base::fail(base::Errc::kBadInput, "a password must be at least 12 characters");
  if (password.size() > 1024)
    return base::fail(base::Errc::kBadInput, "a password must be at most 1024 bytes");
  return {};
}

base::Result<std::string> hash_password(std::string_view password) {
  if (auto ok = check_password_rule(password); !ok) return tl::unexpected(ok.error());
  sodium_ready();
  char out[crypto_pwhash_argon2id_STRBYTES];
  if (crypto_pwhash_argon2id_str(out, password.data(), password.size(),
                                 crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE,
                                 crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE) != 0)
    return base::fail(base::Errc::kInternal, "argon2id: out of memory");
  return std::string(out);
}

bool verify_password(std::string_view stored_hash, std::string_view password) noexcept {
  if (stored_hash.size() >= crypto_pwhash_argon2id_STRBYTES ||
      stored_hash.rfind("$argon2id$", 0) != 0 || password.size() > 1024)
    return false;
  sodium_ready();
  char stored[crypto_pwhash_argon2id_STRBYTES] = {};
  stored_hash.copy(stored, stored_hash.size());
  return crypto_pwhash_argon2id_str_verify(stored, password.data(), password.size()) == 0;
}

// ---- sessions ---------------------------------------------------------------

std::string SessionTable::random_key() {
  sodium_ready();
  std::string k(crypto_generichash_KEYBYTES, '\0');
  randombytes_buf(k.data(), k.size());
  return k;
}

std::string SessionTable::key_of(std::string_view id) const {
  std::string out(crypto_generichash_BYTES, '\0');
  crypto_generichash(reinterpret_cast<unsigned char*>(out.data()), out.size(),
                     reinterpret_cast<const unsigned char*>(id.data()), id.size(),
                     reinterpret_cast<const unsigned char*>(hash_key_.data()), hash_key_.size());
  return out;
}

void SessionTable::evict_oldest(std::string_view account_or_empty) {
  auto oldest = by_key_.end();
  for (auto it = by_key_.begin(); it != by_key_.end(); ++it) {
    if (!account_or_empty.empty() && it->second.account != account_or_empty) continue;
    if (oldest == by_key_.end() || it->second.serial < oldest->second.serial) oldest = it;
  }
  if (oldest != by_key_.end()) by_key_.erase(oldest);
}

NewSession SessionTable::create(std::string_view account, PanelClock::time_point now) {
  std::size_t mine = 0;
  for (const auto& [k, e] : by_key_) mine += e.account == account;
  if (mine >= limits_.per_account) evict_oldest(account);
  if (by_key_.size() >= limits_.total) evict_oldest({});
  NewSession s{random_token(32), random_token(32)};
  by_key_[key_of(s.id)] = Entry{std::string(account), s.csrf, now, now, next_serial_++};
  return s;
}

std::optional<SessionView> SessionTable::touch(std::string_view id, PanelClock::time_point now) {
  if (!base64url_token(id)) return std::nullopt;
  auto it = by_key_.find(key_of(id));
  if (it == by_key_.end()) return std::nullopt;
  Entry& e = it->second;
  if (now - e.last_seen > limits_.idle || now - e.created > limits_.absolute) {
    by_key_.erase(it);
    return std::nullopt;
  }
  e.last_seen = now;
  return SessionView{e.account, e.csrf};
}

bool SessionTable::end(std::string_view id) {
  if (!base64url_token(id)) return false;
  return by_key_.erase(key_of(id)) != 0;
}

std::size_t SessionTable::end_account(std::string_view account) {
  return std::erase_if(by_key_, [&](const auto& kv) { return kv.second.account == account; });
}

bool csrf_matches(std::string_view expected, std::string_view sent) noexcept {
  if (expected.empty() || sent.size() != expected.size()) return false;
  return sodium_memcmp(expected.data(), sent.data(), expected.size()) == 0;
}

// ---- login limiter ----------------------------------------------------------

void LoginLimiter::trim(Attempts& a, PanelClock::time_point now) const {
  while (!a.times.empty() && now - a.times.front() >= limits_.window) a.times.pop_front();
}

std::chrono::seconds LoginLimiter::wait_for(const std::string& key, std::uint32_t limit,
                                            PanelClock::time_point now) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::chrono::seconds{0};
  trim(it->second, now);
  if (it->second.times.size() < limit) {
    if (it->second.times.empty()) entries_.erase(it);
    return std::chrono::seconds{0};
  }
  // Free again when the oldest counted attempt leaves the window.
  const auto free_at = it->second.times[it->second.times.size() - limit] + limits_.window;
  return std::chrono::ceil<std::chrono::seconds>(free_at - now);
}

std::chrono::seconds LoginLimiter::retry_after(std::string_view account, std::string_view source,
                                               PanelClock::time_point now) {
  std::string a = "a:";
  a += account;
  std::string s = "s:";
  s += source;
  return std::max(wait_for(a, limits_.per_account, now), wait_for(s, limits_.per_source, now));
}

void LoginLimiter::failed(std::string_view account, std::string_view source,
                          PanelClock::time_point now) {
  for (std::string key : {std::string("a:").append(account), std::string("s:").append(source)}) {
    Attempts& at = entries_[key];
    trim(at, now);
    at.times.push_back(now);
    // Only the newest `limit` attempts matter; older ones are kept no longer.
    while (at.times.size() > std::max(limits_.per_account, limits_.per_source))
      at.times.pop_front();
  }
  if (entries_.size() > limits_.max_keys) {
    // Drop the stalest tenth at once, so a spray of names or sources costs
    // one scan per thousand new keys, not one per attempt.
    std::vector<std::pair<PanelClock::time_point, std::string>> by_age;
    by_age.reserve(entries_.size());
    for (const auto& [k, v] : entries_)
      by_age.emplace_back(v.times.empty() ? PanelClock::time_point{} : v.times.back(), k);
    const std::size_t drop = entries_.size() - limits_.max_keys + limits_.max_keys / 10;
    std::nth_element(by_age.begin(), by_age.begin() + static_cast<std::ptrdiff_t>(drop) - 1,
                     by_age.end());
    for (std::size_t i = 0; i < drop; ++i) entries_.erase(by_age[i].second);
  }
}

void LoginLimiter::succeeded(std::string_view account) {
  entries_.erase(std::string("a:").append(account));
}

// ---- cookies and origin -----------------------------------------------------

std::string session_cookie(std::string_view id, std::chrono::seconds max_age, bool secure) {
  std::string c(kSessionCookie);
  c += '=';
  c += id;
  c += "; Path=/; HttpOnly; SameSite=Strict; Max-Age=";
  c += std::to_string(std::max<std::int64_t>(0, max_age.count()));
  if (secure) c += "; Secure";
  return c;
}

std::optional<std::string_view> find_session_cookie(std::string_view header) {
  std::optional<std::string_view> found;
  while (!header.empty()) {
    const auto semi = header.find(';');
    std::string_view pair = trim(header.substr(0, semi));
    header.remove_prefix(semi == std::string_view::npos ? header.size() : semi + 1);
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos || trim(pair.substr(0, eq)) != kSessionCookie) continue;
    if (found) return std::nullopt;  // two session cookies: trust neither
    found = trim(pair.substr(eq + 1));
  }
  if (found && !base64url_token(*found)) return std::nullopt;
  return found;
}

bool same_origin(std::string_view origin, std::string_view referer,
                 std::string_view own_origin) noexcept {
  if (own_origin.empty()) return false;
  if (!origin.empty()) return origin == own_origin;
  if (referer.size() < own_origin.size() || referer.substr(0, own_origin.size()) != own_origin)
    return false;
  return referer.size() == own_origin.size() || referer[own_origin.size()] == '/';
}

}  // namespace mtw::api
