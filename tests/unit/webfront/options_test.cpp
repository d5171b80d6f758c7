#include "webfront/options.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "webfront/cert_store.h"

namespace mtw::webfront {
namespace {

std::vector<std::string_view> base_args() {
  return {"--listen-fd", "5",      "--cert",    "/c.pem",
          "--key",       "/k.pem", "--host",    "Proxy.Example.com",
          "--users",     "/u",     "--backend", "127.0.0.1:8443"};
}

TEST(FrontOptionsTest, RequiredAndDefaults) {
  auto o = parse_front_options(base_args());
  ASSERT_TRUE(o) << o.error().context;
  EXPECT_EQ(o->listen_fds, std::vector<int>{5});
  EXPECT_EQ(o->address.host, "proxy.example.com");
  EXPECT_EQ(o->backend.port, 8443);
  EXPECT_EQ(o->cert_check_ms, 10'000u);
  EXPECT_EQ(o->limits.max_streams_per_session, 16u);
  for (std::size_t drop = 0; drop < base_args().size(); drop += 2) {
    auto args = base_args();
    args.erase(args.begin() + static_cast<std::ptrdiff_t>(drop),
               args.begin() + static_cast<std::ptrdiff_t>(drop) + 2);
    EXPECT_FALSE(parse_front_options(args)) << "without " << base_args()[drop];
  }
}

TEST(FrontOptionsTest, ValuesAndErrors) {
  auto args = base_args();
  args.insert(args.end(), {"--cert-check-interval", "250ms", "--session-idle-timeout=1.5",
                           "--max-sessions-per-user", "3", "--host", "proxy.example.com/app"});
  auto o = parse_front_options(args);
  ASSERT_TRUE(o) << o.error().context;
  EXPECT_EQ(o->cert_check_ms, 250u);
  EXPECT_EQ(o->limits.session_idle_timeout_ms, 1500u);
  EXPECT_EQ(o->limits.max_sessions_per_user, 3u);
  EXPECT_EQ(o->address.path, "app");
  for (auto bad : std::vector<std::vector<std::string_view>>{{"--host", "127.0.0.1"},
                                                             {"--host", "localhost"},
                                                             {"--backend", "nope"},
                                                             {"--listen-fd", "1"},
                                                             {"--max-sessions", "0"},
                                                             {"--cert-check-interval", "soon"},
                                                             {"--frobnicate", "1"},
                                                             {"--max-streams-per-session"}}) {
    auto a = base_args();
    a.insert(a.end(), bad.begin(), bad.end());
    auto r = parse_front_options(a);
    ASSERT_FALSE(r) << bad[0];
    EXPECT_NE(r.error().context.find(std::string(bad[0])), std::string::npos) << r.error().context;
  }
  auto help = parse_front_options({"--help"});
  ASSERT_TRUE(help);
  EXPECT_TRUE(help->help);
  EXPECT_NE(front_usage_text().find("--decoy-dir"), std::string::npos);
}

TEST(FrontOptionsTest, ManagedModeTakesTheControlSocketInstead) {
  std::vector<std::string_view> args = {"--listen-fd",  "5",  "--cert",        "/c",
                                        "--key",        "/k", "--host",        "a.example.com",
                                        "--control-fd", "6",  "--listener-id", "3"};
  auto o = parse_front_options(args);
  ASSERT_TRUE(o) << o.error().context;
  EXPECT_EQ(o->control_fd, 6);
  EXPECT_EQ(o->listener_id, 3u);
  auto both = args;
  both.insert(both.end(), {"--users", "/u"});
  EXPECT_FALSE(parse_front_options(both));
  auto with_backend = args;
  with_backend.insert(with_backend.end(), {"--backend", "127.0.0.1:1"});
  EXPECT_FALSE(parse_front_options(with_backend));
}

TEST(UserTableTest, ParsesAndNamesTheBadLine) {
  auto t = parse_user_table(
      "# users\n\n7 00112233445566778899aabbccddeeff\n  9\tdd00112233445566778899aabbccddeeff \n");
  ASSERT_TRUE(t) << t.error().context;
  ASSERT_EQ(t->size(), 2u);
  EXPECT_EQ((*t)[0].user, 7u);
  EXPECT_EQ((*t)[1].user, 9u);
  EXPECT_EQ((*t)[1].secret.kind, proto::SecretKind::kSecure);
  auto bad = parse_user_table("7 00112233445566778899aabbccddeeff\nx 00\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().context.find("line 2"), std::string::npos);
  auto secret = parse_user_table("7 00112233445566778899aabbccddee\n");
  ASSERT_FALSE(secret);
  EXPECT_EQ(secret.error().context.find("00112233"), std::string::npos);  // never echoed
  EXPECT_FALSE(parse_user_table("7\n"));
  EXPECT_TRUE(parse_user_table("")->empty());
}

TEST(DurationTest, Forms) {
  EXPECT_EQ(*parse_duration_ms("10"), 10'000u);
  EXPECT_EQ(*parse_duration_ms("2s"), 2'000u);
  EXPECT_EQ(*parse_duration_ms("250ms"), 250u);
  EXPECT_FALSE(parse_duration_ms(""));
  EXPECT_FALSE(parse_duration_ms("-1"));
  EXPECT_FALSE(parse_duration_ms("1e12"));
}

TEST(CertStoreTest, MissingAndBrokenFilesAreErrors) {
  auto missing = CertStore::open("/nonexistent/cert.pem", "/nonexistent/key.pem");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, base::Errc::kNotFound);
  char path[] = "/tmp/mtw-cert-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
  auto broken = CertStore::open(path, path);
  std::remove(path);
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().code, base::Errc::kCrypto);
}

}  // namespace
}  // namespace mtw::webfront
