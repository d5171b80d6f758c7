#include "api/token.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace mtw::api {
namespace {

std::string temp_dir() {
  std::string t = (std::filesystem::temp_directory_path() / "mtw_token_XXXXXX").string();
  return ::mkdtemp(t.data());
}

TEST(Token, GeneratesPrefixedBase64UrlOf32Bytes) {
  const std::string a = generate_token(), b = generate_token();
  ASSERT_EQ(a.size(), 4u + 43u);
  EXPECT_EQ(a.substr(0, 4), "mtw_");
  for (char c : a.substr(4))
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << c;
  EXPECT_NE(a, b);
}

TEST(Token, HashIsSha256Hex) {
  // FIPS 180-2 known answer for "abc".
  EXPECT_EQ(token_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Token, MatchesOnlyItsOwnHash) {
  const std::string t = generate_token();
  const std::string h = token_hash(t);
  EXPECT_TRUE(token_matches(t, h));
  EXPECT_FALSE(token_matches(t + "x", h));
  EXPECT_FALSE(token_matches("", h));
  EXPECT_FALSE(token_matches(t, ""));
  EXPECT_FALSE(token_matches(t, h.substr(1)));
}

TEST(Token, FileRoundTripIsPrivate) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/api_token.sha256";
  const std::string h = token_hash(generate_token());
  ASSERT_TRUE(store_token_hash(path, h));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto loaded = load_token_hash(path);
  ASSERT_TRUE(loaded) << loaded.error().to_string();
  EXPECT_EQ(*loaded, h);
  // Rewriting replaces it atomically.
  const std::string h2 = token_hash("other");
  ASSERT_TRUE(store_token_hash(path, h2));
  EXPECT_EQ(*load_token_hash(path), h2);
  std::filesystem::remove_all(dir);
}

TEST(Token, LoadReportsMissingAndGarbage) {
  const std::string dir = temp_dir();
  auto missing = load_token_hash(dir + "/nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, base::Errc::kNotFound);
  std::ofstream(dir + "/bad") << "not a hash\n";
  auto bad = load_token_hash(dir + "/bad");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, base::Errc::kBadInput);
  EXPECT_FALSE(store_token_hash(dir + "/x", "ABC"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mtw::api
