#include "webfront/site.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "proto/secret.h"
#include "proto/webproxy_carrier.h"

namespace mtw::webfront {
namespace {

proto::WebProxyAddress addr() { return *proto::parse_web_proxy_address("proxy.example.com"); }

// The contract's v1 vector (../shared/docs/webproxy.md §1.2).
constexpr std::string_view kCap = "MHLEY5PmW1GWqJkSrlmJpvJUiLhBH_QKy6yKg8a0JPk";

Route route(std::string_view method, std::string_view target, bool upgrade = false,
            std::optional<std::string_view> proto = std::nullopt) {
  RequestHead h;
  h.method = method;
  h.target = target;
  h.websocket_upgrade = upgrade;
  h.has_subprotocol = proto.has_value();
  if (proto) h.subprotocol = *proto;
  return route_request(h, addr());
}

TEST(RouteTest, BridgeOnlyAtTheExactUrl) {
  std::string target = "/?bridge=" + std::string(kCap);
  auto r = route("GET", target);
  ASSERT_EQ(r.kind, Route::Kind::kBridge);
  EXPECT_EQ(r.capability, kCap);
  EXPECT_EQ(route("HEAD", target).kind, Route::Kind::kDecoy);
  EXPECT_EQ(route("POST", target).kind, Route::Kind::kDecoy);
  auto extra = route("GET", target + "&a=b");
  EXPECT_EQ(extra.kind, Route::Kind::kDecoy);
  EXPECT_EQ(extra.why, "non_canonical");
  EXPECT_EQ(route("GET", "/x/?bridge=" + std::string(kCap)).kind, Route::Kind::kDecoy);
  EXPECT_EQ(route("GET", "/?bridge=" + std::string(kCap.substr(1))).kind, Route::Kind::kDecoy);
  auto plain = route("GET", "/");
  EXPECT_EQ(plain.kind, Route::Kind::kDecoy);
  EXPECT_EQ(plain.why, "not_bridge");
}

TEST(RouteTest, CarrierNeedsUpgradeAndOneWellFormedToken) {
  std::string token(proto::kWebTokenChars, 'A');
  std::string sub = "tproxy-v1." + token;
  auto r = route("GET", "/api/v1/ws", true, sub);
  ASSERT_EQ(r.kind, Route::Kind::kCarrier);
  EXPECT_EQ(r.token, token);
  EXPECT_EQ(route("GET", "/api/v1/ws?x", true, sub).kind, Route::Kind::kCarrier);
  EXPECT_EQ(route("GET", "/api/v1/ws", false, sub).why, "bad_carrier");
  EXPECT_EQ(route("POST", "/api/v1/ws", true, sub).why, "bad_carrier");
  EXPECT_EQ(route("GET", "/api/v1/ws", true).why, "bad_carrier");
  EXPECT_EQ(route("GET", "/api/v1/ws", true, "tproxy-v1.short").why, "bad_carrier");
  EXPECT_EQ(route("GET", "/api/v1/ws", true, sub + ", " + sub).why, "bad_carrier");
  EXPECT_EQ(route("GET", "/api/v1/wsx", true, sub).kind, Route::Kind::kDecoy);
}

TEST(BridgePageTest, CarriesTokenNonceAndTheAppBoundary) {
  std::string token(proto::kWebTokenChars, 'T');
  std::string page = render_bridge_page(token, "NONCE123");
  EXPECT_NE(page.find("<script nonce=\"NONCE123\">"), std::string::npos);
  EXPECT_NE(page.find("const bootstrap = \"" + token + "\";"), std::string::npos);
  // The app boundary of §1.4: onmessage before init, init with the nonce,
  // status while connecting, the carrier's subprotocol.
  auto onmessage = page.find("app.onmessage =");
  auto init = page.find("t: 'tproxy-android-init', v: 1, nonce: nonce");
  ASSERT_NE(onmessage, std::string::npos);
  ASSERT_NE(init, std::string::npos);
  EXPECT_LT(onmessage, init);
  EXPECT_NE(page.find("state: 'connecting'"), std::string::npos);
  EXPECT_NE(page.find("'tproxy-v1.' + bootstrap"), std::string::npos);
  EXPECT_NE(page.find("history.replaceState(null, '', location.pathname)"), std::string::npos);
  // No external resource: the restricted WebView allows inline script only.
  EXPECT_EQ(page.find("src="), std::string::npos);
  EXPECT_EQ(page.find("http://"), std::string::npos);
}

TEST(BridgePageTest, CspAllowsOnlyTheNoncedScriptAndItsOrigin) {
  std::string csp = bridge_csp(addr(), "N1");
  EXPECT_EQ(csp,
            "default-src 'none'; script-src 'nonce-N1'; connect-src 'self' "
            "wss://proxy.example.com; base-uri 'none'; form-action 'none'; frame-ancestors "
            "http://127.0.0.1:*");
}

TEST(DecoyTest, BuiltInSite) {
  DecoySite site;
  auto r = site.lookup("GET", "/");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_NE(r.body.find("Welcome"), std::string_view::npos);
  EXPECT_EQ(site.lookup("GET", "/?bridge=x").body, r.body);
  EXPECT_EQ(site.lookup("HEAD", "/index.html").status, 200u);
  EXPECT_EQ(site.lookup("GET", "/missing").status, 404u);
  EXPECT_EQ(site.lookup("DELETE", "/").status, 405u);
  EXPECT_EQ(site.lookup("GET", "*").status, 404u);
}

class DecoyDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mtw-decoy-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& name, const std::string& body) {
    std::ofstream(dir_ + "/" + name) << body;
  }
  std::string dir_;
};

TEST_F(DecoyDirTest, ServesItsFilesAndOnlyThem) {
  write("index.html", "<h1>home</h1>");
  write("style.css", "body{}");
  write("404.html", "gone");
  write(".hidden", "secret");
  std::filesystem::create_directory(dir_ + "/sub");
  write("sub/inner.html", "inner");
  std::filesystem::create_symlink("/etc/hostname", dir_ + "/link.txt");
  auto site = DecoySite::load(dir_);
  ASSERT_TRUE(site) << site.error().to_string();
  EXPECT_EQ(site->files(), 3u);
  EXPECT_EQ(site->lookup("GET", "/").body, "<h1>home</h1>");
  auto css = site->lookup("GET", "/style.css?v=2");
  EXPECT_EQ(css.status, 200u);
  EXPECT_EQ(css.content_type, "text/css; charset=utf-8");
  for (const char* t : {"/.hidden", "/sub/inner.html", "/link.txt", "/../etc/passwd", "/nope"}) {
    auto r = site->lookup("GET", t);
    EXPECT_EQ(r.status, 404u) << t;
    EXPECT_EQ(r.body, "gone") << t;
  }
}

TEST_F(DecoyDirTest, MissingDirectoryIsAnError) {
  auto site = DecoySite::load(dir_ + "/absent");
  ASSERT_FALSE(site);
  EXPECT_EQ(site.error().code, base::Errc::kSyscall);
}

TEST(ContentTypeTest, ByExtension) {
  EXPECT_EQ(content_type_for("a.png"), "image/png");
  EXPECT_EQ(content_type_for("a.svg"), "image/svg+xml");
  EXPECT_EQ(content_type_for("noext"), "application/octet-stream");
}

}  // namespace
}  // namespace mtw::webfront
