#include "api/panel_auth.h"

#include <gtest/gtest.h>

#include <set>

using namespace mtw::api;
using namespace std::chrono_literals;

namespace {
const PanelClock::time_point t0{};
}

TEST(PanelPassword, HashesWithArgon2idAndVerifiesOnlyTheRightPassword) {
  auto h = hash_password("correct horse battery");
  ASSERT_TRUE(h) << h.error().context;
  EXPECT_EQ(h->rfind("$argon2id$v=19$m=65536,t=2,p=1$", 0), 0u) << *h;
  EXPECT_TRUE(verify_password(*h, "correct horse battery"));
  EXPECT_FALSE(verify_password(*h, "correct horse batterY"));
  EXPECT_FALSE(verify_password(*h, ""));
  // Salted: the same password twice gives two different hashes.
  auto h2 = hash_password("correct horse battery");
  ASSERT_TRUE(h2);
  EXPECT_NE(*h, *h2);
}

TEST(PanelPassword, RefusesShortAndHugePasswordsAndBadHashes) {
  EXPECT_FALSE(hash_password("short"));
  EXPECT_FALSE(hash_password(std::string(1025, 'x')));
  EXPECT_FALSE(verify_password("", "whatever password"));
  EXPECT_FALSE(verify_password("$2y$10$abcdefghijklmnopqrstuv", "whatever password"));
  EXPECT_FALSE(verify_password(std::string(500, '$'), "whatever password"));
}

TEST(PanelSession, IssuesFreshRandomIdsAndFindsThemAgain) {
  SessionTable t;
  auto a = t.create("admin", t0);
  auto b = t.create("admin", t0);
  EXPECT_EQ(a.id.size(), 43u);
  EXPECT_NE(a.id, b.id);
  EXPECT_NE(a.csrf, b.csrf);
  auto v = t.touch(a.id, t0 + 1s);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->account, "admin");
  EXPECT_EQ(v->csrf, a.csrf);
  EXPECT_FALSE(t.touch("not-a-session", t0));
  std::string forged = a.id;
  forged[0] = forged[0] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(t.touch(forged, t0));
}

TEST(PanelSession, ExpiresWhenIdleAndAfterTheAbsoluteLimitAndOnLogout) {
  SessionTable t({.idle = 60s, .absolute = 300s});
  auto s = t.create("admin", t0);
  EXPECT_TRUE(t.touch(s.id, t0 + 50s));
  EXPECT_TRUE(t.touch(s.id, t0 + 100s));   // idle counted from the last request
  EXPECT_FALSE(t.touch(s.id, t0 + 161s));  // idle too long
  EXPECT_EQ(t.size(), 0u);

  auto busy = t.create("admin", t0);
  for (auto at = 30s; at < 300s; at += 30s) ASSERT_TRUE(t.touch(busy.id, t0 + at));
  EXPECT_FALSE(t.touch(busy.id, t0 + 301s));  // active, but logged in too long ago

  auto out = t.create("admin", t0);
  EXPECT_TRUE(t.end(out.id));
  EXPECT_FALSE(t.touch(out.id, t0));
  EXPECT_FALSE(t.end(out.id));
}

TEST(PanelSession, BoundsSessionsPerAccountAndInAllAndEndsAnAccountsSessions) {
  SessionTable t({.per_account = 3, .total = 5});
  auto first = t.create("a", t0);
  for (int i = 0; i < 3; ++i) (void)t.create("a", t0);
  EXPECT_FALSE(t.touch(first.id, t0));  // the oldest of a's four went
  auto b1 = t.create("b", t0);
  (void)t.create("b", t0);
  (void)t.create("c", t0);
  EXPECT_LE(t.size(), 5u);
  EXPECT_GE(t.end_account("b"), 1u);
  EXPECT_FALSE(t.touch(b1.id, t0));
}

TEST(PanelCsrf, MatchesOnlyTheSessionsToken) {
  SessionTable t;
  auto s = t.create("admin", t0);
  EXPECT_TRUE(csrf_matches(s.csrf, s.csrf));
  EXPECT_FALSE(csrf_matches(s.csrf, ""));
  EXPECT_FALSE(csrf_matches(s.csrf, s.csrf.substr(1)));
  EXPECT_FALSE(csrf_matches(s.csrf, t.create("admin", t0).csrf));
  EXPECT_FALSE(csrf_matches("", ""));
}

TEST(PanelLogin, LocksAnAccountAfterItsFailuresAndFreesItWhenTheyAge) {
  LoginLimiter l({.per_account = 3, .per_source = 100, .window = 60s});
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(l.retry_after("admin", "192.0.2.1", t0 + 1s * i), 0s);
    l.failed("admin", "192.0.2.1", t0 + 1s * i);
  }
  // From any source: the account is what is being guessed.
  EXPECT_EQ(l.retry_after("admin", "198.51.100.9", t0 + 10s), 50s);
  EXPECT_EQ(l.retry_after("other", "192.0.2.1", t0 + 10s), 0s);
  EXPECT_EQ(l.retry_after("admin", "192.0.2.1", t0 + 60s), 0s);
}

TEST(PanelLogin, LocksASourceSprayingManyAccountNames) {
  LoginLimiter l({.per_account = 5, .per_source = 4, .window = 60s});
  for (int i = 0; i < 4; ++i) l.failed("user" + std::to_string(i), "2001:db8:1:2::/64", t0);
  EXPECT_GT(l.retry_after("fresh", "2001:db8:1:2::/64", t0 + 1s), 0s);
  EXPECT_EQ(l.retry_after("fresh", "2001:db8:9::/64", t0 + 1s), 0s);
}

TEST(PanelLogin, SuccessClearsTheAccountAndMemoryStaysBounded) {
  LoginLimiter l({.per_account = 2, .per_source = 1000, .window = 60s, .max_keys = 100});
  l.failed("admin", "s", t0);
  l.failed("admin", "s", t0);
  EXPECT_GT(l.retry_after("admin", "s", t0), 0s);
  l.succeeded("admin");
  EXPECT_EQ(l.retry_after("admin", "s", t0), 0s);
  for (int i = 0; i < 10'000; ++i) l.failed("n" + std::to_string(i), "s", t0 + 1ms * i);
  EXPECT_LE(l.keys(), 101u);
  EXPECT_GT(l.retry_after("admin", "s", t0 + 20s), 0s);  // the spraying source itself is still held
}

TEST(PanelCookie, IsHttpOnlyStrictAndSecureOverTls) {
  EXPECT_EQ(session_cookie("abc", 3600s, true),
            "mtw_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600; Secure");
  EXPECT_EQ(session_cookie("", 0s, false),
            "mtw_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
}

TEST(PanelCookie, FindsExactlyOneWellFormedSessionCookie) {
  const std::string id(43, 'A');
  EXPECT_EQ(find_session_cookie("theme=dark; mtw_session=" + id), id);
  EXPECT_EQ(find_session_cookie(" mtw_session = " + id + " ;x=1"), id);
  EXPECT_FALSE(find_session_cookie("theme=dark"));
  EXPECT_FALSE(find_session_cookie(""));
  // Planted second cookie (fixation through a sibling domain): neither is trusted.
  EXPECT_FALSE(find_session_cookie("mtw_session=" + id + "; mtw_session=" + std::string(43, 'B')));
  EXPECT_FALSE(find_session_cookie("mtw_session=" + id + "!"));
  EXPECT_FALSE(find_session_cookie("mtw_session=short"));
  EXPECT_FALSE(find_session_cookie("xmtw_session=" + id));
}

TEST(PanelOrigin, AcceptsOnlyThePanelsOwnOrigin) {
  const std::string own = "https://panel.example:8443";
  EXPECT_TRUE(same_origin(own, "", own));
  EXPECT_TRUE(same_origin("", own + "/users?x=1", own));
  EXPECT_TRUE(same_origin("", own, own));
  EXPECT_FALSE(same_origin("", "", own));
  EXPECT_FALSE(same_origin("null", own + "/", own));
  EXPECT_FALSE(same_origin("https://panel.example", "", own));
  EXPECT_FALSE(same_origin("", own + ".evil.test/", own));
  EXPECT_FALSE(same_origin("", "https://panel.example:84431/", own));
  EXPECT_FALSE(same_origin(own, "", ""));
}
