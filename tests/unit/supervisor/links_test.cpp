#include "supervisor/links.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

namespace mtw::supervisor {
namespace {

using base::Errc;

// 16-byte secrets in hex; the ee one carries the fake-TLS domain www.example.com.
const std::string kTgLink =
    "tg://proxy?server=proxy.example.com&port=443&secret="
    "ee00112233445566778899aabbccddeeff7777772e6578616d706c652e636f6d";
const std::string kHttpsLink =
    "https://t.me/proxy?server=198.51.100.23&port=443&secret="
    "ee0f1e2d3c4b5a69788796a5b4c3d2e1f07777772e6578616d706c652e636f6d";
const std::string kDdLink =
    "tg://proxy?server=203.0.113.7&port=8443&secret=dd4f3c2b1a09f8e7d6c5b4a3928170fedc";

// Dark modules in padded coordinates, row-major, `side` a side.
struct Grid {
  int side = 0;
  std::vector<bool> dark;
  bool at(int x, int y) const { return dark[static_cast<std::size_t>(y) * side + x]; }
};

// Splits the terminal rendering into lines of glyphs (each glyph one UTF-8 string).
std::vector<std::vector<std::string>> glyph_lines(const std::string& text) {
  std::vector<std::vector<std::string>> lines(1);
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] == '\n') {
      lines.emplace_back();
      ++i;
      continue;
    }
    const std::size_t len = (text[i] & 0x80) == 0 ? 1 : 3;  // ' ' or a U+25xx block
    lines.back().push_back(text.substr(i, len));
    i += len;
  }
  EXPECT_TRUE(lines.back().empty()) << "output must end with '\\n'";
  lines.pop_back();
  return lines;
}

// A drawn half is a light module; a space half is dark (terminal background).
Grid grid_from_terminal(const std::string& text) {
  const auto lines = glyph_lines(text);
  Grid g;
  g.side = lines.empty() ? 0 : static_cast<int>(lines[0].size());
  g.dark.assign(static_cast<std::size_t>(g.side) * g.side, false);
  for (std::size_t l = 0; l < lines.size(); ++l) {
    for (std::size_t x = 0; x < lines[l].size(); ++x) {
      const std::string& c = lines[l][x];
      const bool top_light = c == "█" || c == "▀";
      const bool bottom_light = c == "█" || c == "▄";
      EXPECT_TRUE(top_light || bottom_light || c == " ") << "unexpected glyph " << c;
      g.dark[2 * l * g.side + x] = !top_light;
      if (2 * l + 1 < static_cast<std::size_t>(g.side)) {
        g.dark[(2 * l + 1) * g.side + x] = !bottom_light;
      }
    }
  }
  return g;
}

int count_dark(const Grid& g) {
  int n = 0;
  for (bool d : g.dark) n += d;
  return n;
}

std::string as_string(const proto::Bytes& b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

std::uint32_t be32(const proto::Bytes& b, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = v << 8 | std::to_integer<std::uint32_t>(b[at + i]);
  return v;
}

// The tools below come with scripts/deps.sh --test: a missing one fails the
// test instead of skipping it.
bool have_tool(const std::string& name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

// A file under the test temp dir, removed when the test ends.
class TempFile {
 public:
  explicit TempFile(const std::string& suffix) {
    std::string tmpl = ::testing::TempDir() + "links_test_XXXXXX" + suffix;
    const int fd = ::mkstemps(tmpl.data(), static_cast<int>(suffix.size()));
    EXPECT_GE(fd, 0);
    if (fd >= 0) ::close(fd);
    path_ = tmpl;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }
  void write(const std::string& data) const {
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << data;
  }

 private:
  std::string path_;
};

struct Decoded {
  int status = -1;
  std::string text;
};

// zbarimg --raw prints each symbol's text followed by '\n'.
Decoded zbar_decode(const std::string& path) {
  Decoded d;
  FILE* p = ::popen(("zbarimg --raw -q '" + path + "' 2>/dev/null").c_str(), "r");
  if (!p) return d;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) d.text.append(buf, n);
  const int st = ::pclose(p);
  d.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  if (!d.text.empty() && d.text.back() == '\n') d.text.pop_back();
  return d;
}

TEST(QrTerminal, HasOneCellPerModulePlusTwoModuleQuietZone) {
  // kTgLink is 116 bytes: version 7 at level M (capacity 122), 45 modules a side.
  ASSERT_EQ(kTgLink.size(), 116u);
  const auto out = qr_terminal(kTgLink);
  ASSERT_TRUE(out) << out.error().to_string();
  const auto lines = glyph_lines(*out);
  const std::size_t side = 45 + 4;
  ASSERT_EQ(lines.size(), (side + 1) / 2);
  for (const auto& line : lines) EXPECT_EQ(line.size(), side);
}

TEST(QrTerminal, DrawsLightModulesAndLeavesDarkModulesAsSpaces) {
  const auto out = qr_terminal(kDdLink);
  ASSERT_TRUE(out);
  const auto lines = glyph_lines(*out);
  // Line 0 is quiet zone (light) only.
  for (const auto& c : lines[0]) EXPECT_EQ(c, "█");
  // Line 1 holds symbol rows 0 and 1 of the finder: row 0 dark x0..6, row 1 dark x0 and x6.
  const std::vector<std::string> expect = {"█", "█", " ", "▄", "▄", "▄", "▄", "▄", " ", "█"};
  for (std::size_t x = 0; x < expect.size(); ++x) EXPECT_EQ(lines[1][x], expect[x]) << "x=" << x;
  // The last line's lower half lies below the code: background.
  for (const auto& c : lines.back()) EXPECT_EQ(c, "▀");
}

TEST(QrSvg, IsAnSvgDocumentWhosePathCoversExactlyTheDarkModules) {
  const auto term = qr_terminal(kHttpsLink);
  const auto svg = qr_svg(kHttpsLink, 4);
  ASSERT_TRUE(term && svg);
  const Grid g = grid_from_terminal(*term);
  ASSERT_EQ(svg->rfind("<?xml", 0), 0u);
  EXPECT_NE(svg->find("<svg xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  const int side = g.side + 4;  // 4-module quiet zone instead of 2
  EXPECT_NE(svg->find("viewBox=\"0 0 " + std::to_string(side) + " " + std::to_string(side) + "\""),
            std::string::npos);
  EXPECT_NE(svg->find("width=\"" + std::to_string(side * 4) + "\""), std::string::npos);
  EXPECT_EQ(svg->substr(svg->size() - 7), "</svg>\n");

  std::vector<bool> painted(static_cast<std::size_t>(side) * side, false);
  const std::regex run(R"(M(\d+),(\d+)h(\d+)v1h-(\d+)z)");
  int modules = 0;
  for (std::sregex_iterator it(svg->begin(), svg->end(), run), end; it != end; ++it) {
    const int x = std::stoi((*it)[1]), y = std::stoi((*it)[2]), n = std::stoi((*it)[3]);
    ASSERT_EQ(n, std::stoi((*it)[4]));
    for (int i = 0; i < n; ++i) painted[static_cast<std::size_t>(y) * side + x + i] = true;
    modules += n;
  }
  EXPECT_EQ(modules, count_dark(g));
  for (int y = 0; y < g.side; ++y) {
    for (int x = 0; x < g.side; ++x) {
      ASSERT_EQ(painted[static_cast<std::size_t>(y + 2) * side + x + 2], g.at(x, y))
          << "x=" << x << " y=" << y;
    }
  }
}

TEST(QrPng, HasSignatureAndGreyIhdrOfQuietZonedSize) {
  const auto png = qr_png(kTgLink, 3);
  ASSERT_TRUE(png) << png.error().to_string();
  ASSERT_GT(png->size(), 33u);
  EXPECT_EQ(as_string(*png).substr(0, 8), "\x89PNG\r\n\x1a\n");
  EXPECT_EQ(be32(*png, 8), 13u);
  EXPECT_EQ(as_string(*png).substr(12, 4), "IHDR");
  EXPECT_EQ(be32(*png, 16), (45u + 8) * 3);        // width
  EXPECT_EQ(be32(*png, 20), (45u + 8) * 3);        // height
  EXPECT_EQ(std::to_integer<int>((*png)[24]), 8);  // bit depth
  EXPECT_EQ(std::to_integer<int>((*png)[25]), 0);  // colour type: grey
}

// The decisive check: an independent decoder reads back exactly the link.
TEST(QrPng, DecodesToTheLinkWithZbarimg) {
  ASSERT_TRUE(have_tool("zbarimg"))
      << "zbarimg missing: scripts/deps.sh --test installs zbar-tools";
  for (const std::string& link : {kTgLink, kHttpsLink, kDdLink}) {
    const auto png = qr_png(link);
    ASSERT_TRUE(png) << png.error().to_string();
    TempFile file(".png");
    file.write(as_string(*png));
    const Decoded d = zbar_decode(file.path());
    EXPECT_EQ(d.status, 0) << link;
    EXPECT_EQ(d.text, link);
  }
}

// The SVG is rendered by one named renderer, rsvg-convert (librsvg2-bin),
// and the PNG it makes is decoded: never zbarimg on the SVG itself, which
// goes through whatever SVG delegate ImageMagick happens to have (its own
// renderer makes images zbarimg finds no code in; without a delegate it
// cannot read SVG at all).
TEST(QrSvg, DecodesToTheLinkWhenRenderedByRsvgConvert) {
  ASSERT_TRUE(have_tool("zbarimg"))
      << "zbarimg missing: scripts/deps.sh --test installs zbar-tools";
  ASSERT_TRUE(have_tool("rsvg-convert"))
      << "rsvg-convert missing: scripts/deps.sh --test installs librsvg2-bin";
  for (const std::string& link : {kTgLink, kHttpsLink, kDdLink}) {
    const auto svg = qr_svg(link);
    ASSERT_TRUE(svg);
    TempFile in(".svg"), out(".png");
    in.write(*svg);
    // White background: rsvg-convert leaves unpainted areas transparent.
    const std::string cmd = "rsvg-convert --background-color=white -f png -o '" + out.path() +
                            "' '" + in.path() + "' 2>/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    const Decoded d = zbar_decode(out.path());
    EXPECT_EQ(d.status, 0) << link;
    EXPECT_EQ(d.text, link);
  }
}

TEST(QrLinks, RejectEmptyText) {
  EXPECT_EQ(qr_terminal("").error().code, Errc::kBadInput);
  EXPECT_EQ(qr_svg("").error().code, Errc::kBadInput);
  EXPECT_EQ(qr_png("").error().code, Errc::kBadInput);
  EXPECT_NE(qr_terminal("").error().context.find("empty"), std::string::npos);
}

TEST(QrLinks, RejectTextTooLongForAQrCode) {
  const std::string long_text(5000, 'a');
  const auto t = qr_terminal(long_text);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, Errc::kBadInput);
  EXPECT_NE(t.error().context.find("too long"), std::string::npos) << t.error().context;
  EXPECT_EQ(qr_svg(long_text).error().code, Errc::kBadInput);
  EXPECT_EQ(qr_png(long_text).error().code, Errc::kBadInput);
}

TEST(QrLinks, AcceptsExactlyTheVersion40Capacity) {
  // 2331 bytes is the 8-bit capacity of version 40 (177 modules) at level M.
  const auto max = qr_terminal(std::string(2331, 'x'));
  ASSERT_TRUE(max) << max.error().to_string();
  EXPECT_EQ(glyph_lines(*max)[0].size(), 177u + 4);
  EXPECT_EQ(qr_terminal(std::string(2332, 'x')).error().code, Errc::kBadInput);
}

TEST(QrLinks, RejectModuleSizeOutOfRange) {
  EXPECT_EQ(qr_svg(kDdLink, 0).error().code, Errc::kBadInput);
  EXPECT_EQ(qr_png(kDdLink, 0).error().code, Errc::kBadInput);
  EXPECT_EQ(qr_png(kDdLink, 33).error().code, Errc::kBadInput);
  EXPECT_TRUE(qr_png(kDdLink, 1));
}

// ---- which ports and secrets a user's links name

ListenerConfig listener(std::uint16_t port, std::string_view protocols) {
  ListenerConfig l;
  l.bind = proto::Endpoint{"0.0.0.0", port};
  l.protocols = proto::parse_allowed_protocols(protocols).value();
  return l;
}

const std::string kPlain = "0123456789abcdef0123456789abcdef";
const std::string kEe = "ee0123456789abcdef0123456789abcdef6578616d706c652e636f6d";
const std::string kDd = "dd0123456789abcdef0123456789abcdef";

TEST(UserLinks, NameEveryListenerPortOnceInListenerOrder) {
  const std::vector<ListenerConfig> ls = {listener(443, "all"), listener(8443, "all"),
                                          listener(443, "all")};
  const UserLinks l = user_links("proxy.example.com", 0, ls, {kPlain});
  EXPECT_EQ(l.ports, (std::vector<std::uint16_t>{443, 8443}));
  ASSERT_EQ(l.tg.size(), 2u);
  EXPECT_EQ(l.tg[0], "tg://proxy?server=proxy.example.com&port=443&secret=" + kPlain);
  EXPECT_EQ(l.tg[1], "tg://proxy?server=proxy.example.com&port=8443&secret=" + kPlain);
  ASSERT_EQ(l.https.size(), 2u);
  EXPECT_EQ(l.https[1], "https://t.me/proxy?server=proxy.example.com&port=8443&secret=" + kPlain);
}

TEST(UserLinks, PublicPortReplacesTheListenerPorts) {
  const std::vector<ListenerConfig> ls = {listener(8443, "all"), listener(9443, "all")};
  const UserLinks l = user_links("h", 443, ls, {kPlain});
  EXPECT_EQ(l.ports, (std::vector<std::uint16_t>{443}));
  ASSERT_EQ(l.tg.size(), 1u);
  EXPECT_EQ(l.tg[0], "tg://proxy?server=h&port=443&secret=" + kPlain);
}

TEST(UserLinks, OfferASecretOnlyWhereAListenerTakesIt) {
  const std::vector<ListenerConfig> ls = {listener(443, "tls"), listener(8443, "secure")};
  const UserLinks l = user_links("h", 0, ls, {kEe, kDd});
  // ee: hex + base64url on 443 only; dd: hex on 8443 only.
  ASSERT_EQ(l.tg.size(), 3u);
  EXPECT_NE(l.tg[0].find("port=443&secret=" + kEe), std::string::npos);
  EXPECT_NE(l.tg[1].find("port=443&secret="), std::string::npos);
  EXPECT_EQ(l.tg[2], "tg://proxy?server=h&port=8443&secret=" + kDd);
}

TEST(UserLinks, SkipSecretsThatDoNotParse) {
  const UserLinks l = user_links("h", 0, {listener(443, "all")}, {"zz", kPlain});
  ASSERT_EQ(l.tg.size(), 1u);
}

TEST(ListenerTakes, MatchesSecretKindsToProtocols) {
  const auto tls = proto::parse_allowed_protocols("tls").value();
  const auto classic = proto::parse_allowed_protocols("abridged,intermediate").value();
  EXPECT_TRUE(listener_takes(tls, proto::SecretKind::kFakeTls));
  EXPECT_FALSE(listener_takes(tls, proto::SecretKind::kSimple));
  EXPECT_FALSE(listener_takes(tls, proto::SecretKind::kSecure));
  EXPECT_TRUE(listener_takes(classic, proto::SecretKind::kSimple));
  EXPECT_FALSE(listener_takes(classic, proto::SecretKind::kSecure));
}

TEST(ChoosePublicHost, PrefersConfiguredThenLookedUp) {
  EXPECT_EQ(choose_public_host("proxy.example.com", "198.51.100.1"), "proxy.example.com");
  EXPECT_EQ(choose_public_host("", "198.51.100.1"), "198.51.100.1");
  EXPECT_FALSE(choose_public_host("", "").empty());
}

}  // namespace
}  // namespace mtw::supervisor
