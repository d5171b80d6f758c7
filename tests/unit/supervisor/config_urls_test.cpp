// Config keys that hold URLs and files for outgoing HTTP: [api] webhooks,
// webhook_ca_file, [server] public_host_lookup (parsed at load with
// base::parse_http_url, so a URL nothing could dial never starts).
#include "supervisor/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace mtw::supervisor {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kListener = "[[listener]]\nbind = \"0.0.0.0:443\"\n";

std::string error_of(std::string_view text) {
  auto r = parse_config(text, "t.toml");
  if (r) return "<accepted>";
  EXPECT_EQ(r.error().code, base::Errc::kBadInput);
  return r.error().context;
}

// A public test certificate (its key was discarded): a valid PEM bundle.
constexpr std::string_view kTestCaPem = R"(-----BEGIN CERTIFICATE-----
MIIBgjCCASegAwIBAgIUDcQ//sFu+kzPvzwPXiErE3ehCpYwCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLbXR3LXRlc3QtY2EwHhcNMjYxMTIzMDYyMzUwWhcNMzYxMTIw
MDYyMzUwWjAWMRQwEgYDVQQDDAttdHctdGVzdC1jYTBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABP2fuCb/WRar8xz20qqL7N7HQkiGMPerZ8MGsWt2YtLF2TRdFkaH
OzmKcsBM8X9GhlD/Lsrr01HbH0R2r/Ds/JejUzBRMB0GA1UdDgQWBBTZvt/FaZ6H
7WnbbDuSc9afu7g1HDAfBgNVHSMEGDAWgBTZvt/FaZ6H7WnbbDuSc9afu7g1HDAP
BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQDjOwB7uvP/4iPNf/j2
cZA+GkEsWwhYc2Z1VPvdGcmQlwIhAJQY2Lj7OLmJzSb61o8PU23JA2qSo4thbFyr
qpC0j2tC
-----END CERTIFICATE-----
)";

// Writes `text` to a file under the test temp dir; returns its path.
std::string temp_file(const std::string& name, std::string_view text) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::FILE* f = std::fopen(path.c_str(), "w");
  EXPECT_NE(f, nullptr);
  if (f) {
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  }
  return path;
}

TEST(Config, WebhooksAcceptHttpAndHttpsOnly) {
  auto cfg = parse_config(std::string(kListener) +
                              "[api]\nwebhooks = [\"http://127.0.0.1:8080/h\", "
                              "\"https://hooks.example.org/x\"]\n",
                          "t.toml");
  ASSERT_TRUE(cfg) << cfg.error().context;
  EXPECT_EQ(cfg->api.webhooks.size(), 2u);
  EXPECT_EQ(cfg->api.webhook_ca_file, "");
  for (const char* bad : {"ftp://x/", "HTTPS://x", "wss://x"}) {
    EXPECT_THAT(error_of(std::string(kListener) + "[api]\nwebhooks = [\"" + bad + "\"]\n"),
                HasSubstr("t.toml:4:13: api.webhooks entry \"" + std::string(bad) +
                          "\" is not an http(s)://HOST[:PORT]/PATH URL: must start with http:// or "
                          "https://"))
        << bad;
  }
}

// The URL is parsed at load (base::parse_http_url, as the webhooks do): a URL
// the webhooks could not dial rejects the whole file, naming the entry.
TEST(Config, MalformedWebhookUrlsAreRejectedWithTheReason) {
  const std::pair<const char*, const char*> cases[] = {
      {"https://x y/", "bad character ' ' in the host"},
      {"https://x:0/", "port must be a number 1..65535"},
      {"https://x:70000/h", "port must be a number 1..65535"},
      {"https:///h", "no host"},
      {"https://", "no host"},
      {"https://user:pw@x/", "user info (user@) is not supported"},
      {"https://x/h#top", "fragments (#...) are not supported"},
      {"http://[::1/", "unterminated [IPv6] address"},
  };
  for (const auto& [url, why] : cases) {
    const std::string text = std::string(kListener) +
                             "[api]\nwebhooks = [\"http://127.0.0.1:8080/ok\", \"" + url + "\"]\n";
    EXPECT_THAT(error_of(text), HasSubstr("t.toml:4:41: api.webhooks entry \"" + std::string(url) +
                                          "\" is not an http(s)://HOST[:PORT]/PATH URL: " + why))
        << url;
  }
  // A control character is shown escaped, never raw.
  EXPECT_THAT(error_of(std::string(kListener) + "[api]\nwebhooks = [\"https://x\\ty/\"]\n"),
              HasSubstr("api.webhooks entry \"https://x\\x09y/\" is not an "
                        "http(s)://HOST[:PORT]/PATH URL: bad character \\x09 in the host"));
  EXPECT_THAT(error_of(std::string(kListener) + "[api]\nwebhooks = [8080]\n"),
              HasSubstr("t.toml:4:13: api.webhooks entries must be strings"));
  EXPECT_THAT(error_of(std::string(kListener) + "[api]\nwebhooks = \"https://x/\"\n"),
              HasSubstr("t.toml:4:12: api.webhooks must be a list of"));
}

TEST(Config, PublicHostLookupIsAParsedHttpUrl) {
  auto cfg = parse_config(
      std::string(kListener) + "[server]\npublic_host_lookup = \"http://127.0.0.1:8080/ip\"\n",
      "t.toml");
  ASSERT_TRUE(cfg) << cfg.error().context;
  EXPECT_EQ(cfg->server.public_host_lookup, "http://127.0.0.1:8080/ip");
  EXPECT_THAT(error_of(std::string(kListener) + "[server]\npublic_host_lookup = \"http://x y/\"\n"),
              HasSubstr("server.public_host_lookup must be \"\" or an http://HOST[:PORT]/PATH URL: "
                        "bad character"));
  EXPECT_THAT(
      error_of(std::string(kListener) + "[server]\npublic_host_lookup = \"https://ip.example/\"\n"),
      HasSubstr("(https is not supported)"));
  EXPECT_THAT(error_of(std::string(kListener) + "[server]\npublic_host_lookup = \"http://\"\n"),
              HasSubstr("public_host_lookup must be"));
}

TEST(Config, WebhookCaFileMustBeAReadablePemBundle) {
  const std::string good = temp_file("mtw-ca-good.pem", kTestCaPem);
  const std::string junk = temp_file("mtw-ca-junk.pem", "not a certificate\n");
  const std::string broken = temp_file(
      "mtw-ca-broken.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  auto with = [](const std::string& v) {
    return std::string(kListener) + "[api]\nwebhook_ca_file = \"" + v + "\"\n";
  };
  auto cfg = parse_config(with(good), "t.toml");
  ASSERT_TRUE(cfg) << cfg.error().context;
  EXPECT_EQ(cfg->api.webhook_ca_file, good);
  cfg = parse_config(with(""), "t.toml");
  ASSERT_TRUE(cfg) << cfg.error().context;
  EXPECT_EQ(cfg->api.webhook_ca_file, "");
  EXPECT_THAT(error_of(with("/nonexistent/ca.pem")),
              HasSubstr("t.toml:4:19: api.webhook_ca_file \"/nonexistent/ca.pem\" cannot be read: "
                        "No such file or directory"));
  EXPECT_THAT(error_of(with(junk)),
              HasSubstr("api.webhook_ca_file \"" + junk + "\" holds no PEM certificate"));
  EXPECT_THAT(error_of(with(broken)),
              HasSubstr("api.webhook_ca_file \"" + broken + "\" is not a PEM certificate bundle"));
  EXPECT_THAT(error_of(with("ca.pem")),
              HasSubstr("api.webhook_ca_file \"ca.pem\" must be \"\" or an absolute path"));
  for (const auto& p : {good, junk, broken}) std::remove(p.c_str());
}

}  // namespace
}  // namespace mtw::supervisor
