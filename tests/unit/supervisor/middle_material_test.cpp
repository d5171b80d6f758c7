#include "supervisor/middle_material.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace mtw::supervisor {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kV4 =
    "# force_probability 10 10\n"
    "default 2;\n"
    "proxy_for 1 149.154.175.50:8888;\n"
    "proxy_for 2 149.154.161.144:8888;\n";
constexpr std::string_view kV4b =
    "default 2;\n"
    "proxy_for 2 127.0.0.1:8888;\n";
constexpr std::string_view kV6 = "proxy_for 2 [2001:67c:4e8:f002::d]:80;\n";

// 128 bytes that are not text, like getProxySecret's answer.
std::string secret_bytes(unsigned char seed) {
  std::string s(128, '\0');
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(seed + i * 7 + (i >> 3));
  return s;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const fs::path& p, std::string_view data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

class TempDir {
 public:
  TempDir() {
    std::string t = (fs::temp_directory_path() / "mtw-material-XXXXXX").string();
    path_ = ::mkdtemp(t.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Answers from a table; `deferred` keeps callbacks until run() (as a real
// fetcher answers later, on the loop).
class FakeFetcher : public MaterialFetcher {
 public:
  void fetch(const std::string& url, std::size_t max_bytes, Done done) override {
    ++calls[url];
    base::Result<std::string> r = base::fail(base::Errc::kSyscall, "connection refused");
    if (auto it = answers.find(url); it != answers.end()) r = it->second;
    if (r && r->size() > max_bytes) r = base::fail(base::Errc::kTooLarge, "body too large");
    if (deferred)
      queue.emplace_back([done = std::move(done), r]() mutable { done(std::move(r)); });
    else
      done(std::move(r));
  }
  void run() {
    while (!queue.empty()) {
      auto f = std::move(queue.front());
      queue.pop_front();
      f();
    }
  }
  std::map<std::string, base::Result<std::string>> answers;
  std::map<std::string, int> calls;
  bool deferred = false;
  std::deque<std::function<void()>> queue;
};

std::array<MaterialSource, kMaterialKinds> url_sources() {
  return {MaterialSource{MaterialSource::Type::kUrl, "http://h/secret"},
          MaterialSource{MaterialSource::Type::kUrl, "http://h/v4"},
          MaterialSource{MaterialSource::Type::kUrl, "http://h/v6"}};
}

TEST(AdTag, ParsesThirtyTwoHexDigitsEitherCase) {
  auto t = parse_ad_tag("00112233445566778899AABBCCDDEEFF");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(std::to_integer<int>((*t)[0]), 0x00);
  EXPECT_EQ(std::to_integer<int>((*t)[15]), 0xff);
  EXPECT_EQ(format_ad_tag(*t), "00112233445566778899aabbccddeeff");
}

TEST(AdTag, RejectsWrongLengthAndNonHex) {
  for (std::string_view bad :
       {"", "0011", "00112233445566778899aabbccddeeff00", "00112233445566778899aabbccddeefg",
        " 0112233445566778899aabbccddeeff"}) {
    auto t = parse_ad_tag(bad);
    ASSERT_FALSE(t.has_value()) << bad;
    EXPECT_EQ(t.error().context, "ad_tag must be 32 hex digits");
  }
}

TEST(TagRouting, UserTagWinsOnEveryListener) {
  const proto::AdTag u = *parse_ad_tag("11111111111111111111111111111111");
  const proto::AdTag l = *parse_ad_tag("22222222222222222222222222222222");
  const proto::AdTag g = *parse_ad_tag("33333333333333333333333333333333");
  const TagRouting r = tag_routing(u, {l, std::nullopt}, g);
  EXPECT_EQ(r.default_tag, u);
  EXPECT_TRUE(r.listener_tags.empty());
  EXPECT_TRUE(r.any());
}

TEST(TagRouting, ListenerTagThenGlobalWithoutAUserTag) {
  const proto::AdTag l = *parse_ad_tag("22222222222222222222222222222222");
  const proto::AdTag g = *parse_ad_tag("33333333333333333333333333333333");
  const TagRouting r = tag_routing(std::nullopt, {std::nullopt, l}, g);
  EXPECT_EQ(r.default_tag, g);
  ASSERT_EQ(r.listener_tags.size(), 2u);
  EXPECT_EQ(r.listener_tags[0], g);
  EXPECT_EQ(r.listener_tags[1], l);
  // Only listener 1 tagged, no global tag: listener 0 stays direct.
  const TagRouting only = tag_routing(std::nullopt, {std::nullopt, l}, std::nullopt);
  EXPECT_FALSE(only.default_tag.has_value());
  ASSERT_EQ(only.listener_tags.size(), 2u);
  EXPECT_FALSE(only.listener_tags[0].has_value());
  EXPECT_TRUE(only.any());
}

TEST(TagRouting, NoTagAnywhereIsDirect) {
  const TagRouting r = tag_routing(std::nullopt, {std::nullopt, std::nullopt}, std::nullopt);
  EXPECT_FALSE(r.any());
  EXPECT_TRUE(r.listener_tags.empty());
}

TEST(MiddleMode, UntaggedUserIsDirectWhateverTheProxies) {
  EXPECT_EQ(middle_mode(false, true, true, 0), MiddleMode::kDirect);
  EXPECT_EQ(middle_mode(false, false, true, 3), MiddleMode::kDirect);
}

TEST(MiddleMode, TaggedUserIsMiddleWhileTheProxiesAnswer) {
  EXPECT_EQ(middle_mode(true, true, true, 0), MiddleMode::kMiddle);
  EXPECT_EQ(middle_mode_name(MiddleMode::kMiddle), "middle");
}

TEST(MiddleMode, FailingClusterOrNoMaterialIsFallback) {
  EXPECT_EQ(middle_mode(true, true, true, 1), MiddleMode::kFallback);
  EXPECT_EQ(middle_mode(true, false, true, 0), MiddleMode::kFallback);
  EXPECT_EQ(middle_mode_name(MiddleMode::kFallback), "fallback");
}

TEST(MiddlePublicIp, TheConfiguredAddressWins) {
  EXPECT_EQ(middle_public_ip("198.51.100.7", "203.0.113.1", "203.0.113.2"), "198.51.100.7");
}

TEST(MiddlePublicIp, ThenTheLookedUpAddressThenAnAddressAsPublicHost) {
  EXPECT_EQ(middle_public_ip("", "203.0.113.1", "203.0.113.2"), "203.0.113.2");
  EXPECT_EQ(middle_public_ip("", "203.0.113.1", ""), "203.0.113.1");
  EXPECT_EQ(middle_public_ip("", "2001:db8::1", ""), "2001:db8::1");
}

TEST(MiddlePublicIp, AHostNameIsNoAddressSoTheLocalOneIsUsed) {
  // A name could resolve to anything, several addresses or a CDN: the
  // derivation needs the one address the middle proxy sees.
  EXPECT_EQ(middle_public_ip("", "proxy.example.org", ""), "");
  EXPECT_EQ(middle_public_ip("", "proxy.example.org", "not an address"), "");
  EXPECT_EQ(middle_public_ip("", "", ""), "");
}

TEST(MiddleMode, WithoutFallbackAFailingClusterStaysMiddle) {
  // Its clients are closed and retry the middle proxies; none goes direct.
  EXPECT_EQ(middle_mode(true, true, false, 2), MiddleMode::kMiddle);
}

TEST(MaterialSource, AcceptsUrlsAndAbsolutePathsOnly) {
  auto u = parse_material_source("https://core.telegram.org/getProxySecret");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->type, MaterialSource::Type::kUrl);
  auto f = parse_material_source("/etc/mtwarden/proxy-secret");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->type, MaterialSource::Type::kFile);
  auto none = parse_material_source("");
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(none->type, MaterialSource::Type::kNone);
  EXPECT_FALSE(parse_material_source("proxy-secret").has_value());
  EXPECT_FALSE(parse_material_source("ftp://h/x").has_value());
  EXPECT_FALSE(parse_material_source("http://bad host/x").has_value());
}

TEST(ValidateMaterial, RejectsTextAsSecretAndTruncatedConfigs) {
  EXPECT_TRUE(validate_material(MaterialKind::kSecret, secret_bytes(1)).has_value());
  EXPECT_FALSE(validate_material(MaterialKind::kSecret, "<html>Bad gateway</html>").has_value());
  EXPECT_FALSE(validate_material(MaterialKind::kSecret, secret_bytes(1).substr(0, 16)).has_value());
  EXPECT_TRUE(validate_material(MaterialKind::kConfigV4, kV4).has_value());
  // Cut in the middle of a line, as a dropped download is.
  EXPECT_FALSE(
      validate_material(MaterialKind::kConfigV4, kV4.substr(0, kV4.size() - 9)).has_value());
  EXPECT_FALSE(validate_material(MaterialKind::kConfigV4, "").has_value());
  // Each family takes its own address form.
  EXPECT_FALSE(validate_material(MaterialKind::kConfigV4, kV6).has_value());
  EXPECT_TRUE(validate_material(MaterialKind::kConfigV6, kV6).has_value());
}

TEST(MiddleMaterial, RefreshStoresGoodCopiesOnDisk) {
  TempDir tmp;
  MiddleMaterial m((tmp.path() / "middle").string(), url_sources());
  ASSERT_TRUE(m.load_stored().has_value());
  EXPECT_FALSE(m.ready());
  FakeFetcher f;
  f.answers.emplace("http://h/secret", secret_bytes(1));
  f.answers.emplace("http://h/v4", std::string(kV4));
  f.answers.emplace("http://h/v6", std::string(kV6));
  std::optional<bool> changed;
  m.refresh(f, 1000, [&](bool c) { changed = c; });
  ASSERT_EQ(changed, true);
  EXPECT_TRUE(m.ready());
  EXPECT_EQ(m.current()->config_v4, kV4);
  EXPECT_EQ(slurp(tmp.path() / "middle" / "proxy-secret"), secret_bytes(1));
  EXPECT_EQ(slurp(tmp.path() / "middle" / "proxy-multi.conf"), kV4);
  EXPECT_EQ(slurp(tmp.path() / "middle" / "proxy-multi-v6.conf"), kV6);
  EXPECT_EQ(fs::status(tmp.path() / "middle").permissions() & fs::perms::all, fs::perms::owner_all);
  EXPECT_EQ(m.stats().last_success_at, 1000);
  EXPECT_EQ(m.stats().last_change_at, 1000);

  // The same answers again: nothing changed, the generation stays.
  const auto gen = m.current()->generation;
  m.refresh(f, 2000, [&](bool c) { changed = c; });
  EXPECT_EQ(changed, false);
  EXPECT_EQ(m.current()->generation, gen);
  EXPECT_EQ(m.stats().last_success_at, 2000);
  EXPECT_EQ(m.stats().last_change_at, 1000);
}

TEST(MiddleMaterial, BadOrTruncatedDownloadKeepsTheLastGoodCopy) {
  TempDir tmp;
  MiddleMaterial m((tmp.path() / "middle").string(), url_sources());
  ASSERT_TRUE(m.load_stored().has_value());
  FakeFetcher f;
  f.answers.emplace("http://h/secret", secret_bytes(1));
  f.answers.emplace("http://h/v4", std::string(kV4));
  f.answers.emplace("http://h/v6", std::string(kV6));
  m.refresh(f, 1000, [](bool) {});
  ASSERT_TRUE(m.ready());

  f.answers.insert_or_assign("http://h/secret", std::string("<html>502</html>"));
  f.answers.insert_or_assign("http://h/v4", std::string(kV4b.substr(0, 20)));
  f.answers.insert_or_assign("http://h/v6", base::fail(base::Errc::kTimeout, "no answer"));
  std::optional<bool> changed;
  m.refresh(f, 2000, [&](bool c) { changed = c; });
  EXPECT_EQ(changed, false);
  EXPECT_EQ(m.current()->secret.size(), 128u);
  EXPECT_EQ(m.current()->config_v4, kV4);
  EXPECT_EQ(slurp(tmp.path() / "middle" / "proxy-multi.conf"), kV4);
  EXPECT_EQ(slurp(tmp.path() / "middle" / "proxy-secret"), secret_bytes(1));
  EXPECT_EQ(m.stats().refresh_failures, 3u);
  EXPECT_EQ(m.stats().last_success_at, 1000);
  EXPECT_NE(m.stats().last_error.find("proxy_"), std::string::npos);
  // Never the secret's bytes in the reason.
  EXPECT_EQ(m.stats().last_error.find(secret_bytes(1).substr(0, 8)), std::string::npos);
}

TEST(MiddleMaterial, RestartWithoutNetworkUsesTheStoredCopies) {
  TempDir tmp;
  const std::string dir = (tmp.path() / "middle").string();
  {
    MiddleMaterial m(dir, url_sources());
    ASSERT_TRUE(m.load_stored().has_value());
    FakeFetcher f;
    f.answers.emplace("http://h/secret", secret_bytes(3));
    f.answers.emplace("http://h/v4", std::string(kV4b));
    m.refresh(f, 1000, [](bool) {});
    ASSERT_TRUE(m.ready());
  }
  MiddleMaterial again(dir, url_sources());
  ASSERT_TRUE(again.load_stored().has_value());
  EXPECT_TRUE(again.ready());
  EXPECT_EQ(again.current()->config_v4, kV4b);
  EXPECT_EQ(again.current()->secret.size(), 128u);
  EXPECT_TRUE(again.current()->config_v6.empty());
  FakeFetcher down;  // every URL refuses
  std::optional<bool> changed;
  again.refresh(down, 2000, [&](bool c) { changed = c; });
  EXPECT_EQ(changed, false);
  EXPECT_TRUE(again.ready());
  EXPECT_EQ(again.stats().refresh_failures, 3u);
}

TEST(MiddleMaterial, CorruptStoredFileIsIgnored) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "middle";
  fs::create_directory(dir);
  spit(dir / "proxy-secret", "not a secret");
  spit(dir / "proxy-multi.conf", kV4);
  MiddleMaterial m(dir.string(), url_sources());
  ASSERT_TRUE(m.load_stored().has_value());
  EXPECT_FALSE(m.ready());
  EXPECT_TRUE(m.current()->secret.empty());
  EXPECT_EQ(m.current()->config_v4, kV4);
}

TEST(MiddleMaterial, LocalFileSourcesAreReadAndValidated) {
  TempDir tmp;
  spit(tmp.path() / "s", secret_bytes(5));
  spit(tmp.path() / "c", kV4);
  MiddleMaterial m(
      (tmp.path() / "middle").string(),
      {MaterialSource{MaterialSource::Type::kFile, (tmp.path() / "s").string()},
       MaterialSource{MaterialSource::Type::kFile, (tmp.path() / "c").string()}, MaterialSource{}});
  ASSERT_TRUE(m.load_stored().has_value());
  FakeFetcher f;
  std::optional<bool> changed;
  m.refresh(f, 10, [&](bool c) { changed = c; });
  EXPECT_EQ(changed, true);
  EXPECT_TRUE(m.ready());
  EXPECT_TRUE(f.calls.empty());
  spit(tmp.path() / "c", "proxy_for 2 1.2.3");  // an editor's half-written file
  m.refresh(f, 20, [&](bool c) { changed = c; });
  EXPECT_EQ(changed, false);
  EXPECT_EQ(m.current()->config_v4, kV4);
  EXPECT_EQ(m.stats().refresh_failures, 1u);
}

TEST(MiddleMaterial, RoundEndsOnceEveryDeferredAnswerArrived) {
  TempDir tmp;
  MiddleMaterial m((tmp.path() / "middle").string(), url_sources());
  ASSERT_TRUE(m.load_stored().has_value());
  FakeFetcher f;
  f.deferred = true;
  f.answers.emplace("http://h/secret", secret_bytes(1));
  f.answers.emplace("http://h/v4", std::string(kV4));
  std::optional<bool> changed;
  m.refresh(f, 1, [&](bool c) { changed = c; });
  EXPECT_FALSE(changed.has_value());
  // A second round while one runs does nothing.
  std::optional<bool> second;
  m.refresh(f, 1, [&](bool c) { second = c; });
  EXPECT_EQ(second, false);
  EXPECT_EQ(f.calls["http://h/v4"], 1);
  f.run();
  EXPECT_EQ(changed, true);
  EXPECT_TRUE(m.ready());
}

}  // namespace
}  // namespace mtw::supervisor
