// obfuscated2 snapshots from mtg (../shared/vectors/mtg, see its README):
// an independent implementation's handshake, decoded with proto/.
#include <gtest/gtest.h>

#include <boost/json/src.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "proto/obfs2.h"

namespace mtw::proto {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

struct Snapshot {
  std::string name;
  json::value doc;
};

std::vector<Snapshot> load_snapshots() {
  std::vector<Snapshot> out;
  const fs::path dir = fs::path(MTW_SHARED_VECTORS_DIR) / "mtg";
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("client-handshake-snapshot-", 0) != 0) continue;
    std::ifstream in(entry.path());
    std::stringstream ss;
    ss << in.rdbuf();
    out.push_back({name, json::parse(ss.str())});
  }
  return out;
}

Bytes field(const json::value& v, std::string_view path1, std::string_view path2 = {}) {
  const json::value* node = &v.as_object().at(path1);
  if (!path2.empty()) node = &node->as_object().at(path2);
  const Result<Bytes> b = from_base64(std::string_view(node->as_string()));
  EXPECT_TRUE(b.has_value()) << path1 << " " << path2;
  return b ? *b : Bytes{};
}

TEST(MtgObfs2Vectors, SnapshotsArePresent) { EXPECT_EQ(load_snapshots().size(), 2u); }

TEST(MtgObfs2Vectors, FrameDecodesToPaddedTagAndDc) {
  for (const Snapshot& s : load_snapshots()) {
    const Bytes secret = field(s.doc, "secret");
    const Bytes frame = field(s.doc, "frame");
    ASSERT_EQ(secret.size(), 16u) << s.name;
    ASSERT_EQ(frame.size(), kInitSize) << s.name;
    SecretKey key{};
    std::copy(secret.begin(), secret.end(), key.begin());
    const Result<ClientInit> init =
        parse_client_init(std::span<const std::byte, kInitSize>(frame.data(), kInitSize), key);
    ASSERT_TRUE(init.has_value()) << s.name << ": " << init.error().to_string();
    EXPECT_EQ(init->tag, ProtoTag::kPadded) << s.name;
    EXPECT_EQ(init->dc, s.doc.as_object().at("dc").as_int64()) << s.name;
  }
}

TEST(MtgObfs2Vectors, StreamsMatchMtgCipherTextPairs) {
  for (const Snapshot& s : load_snapshots()) {
    const Bytes secret = field(s.doc, "secret");
    const Bytes frame = field(s.doc, "frame");
    SecretKey key{};
    std::copy(secret.begin(), secret.end(), key.begin());
    const Result<ClientInit> init =
        parse_client_init(std::span<const std::byte, kInitSize>(frame.data(), kInitSize), key);
    ASSERT_TRUE(init.has_value()) << s.name;
    Result<Streams> streams = make_client_streams(*init);
    ASSERT_TRUE(streams.has_value()) << s.name;

    Bytes data = field(s.doc, "decrypted", "cipher");
    streams->decrypt.apply(data);
    EXPECT_EQ(data, field(s.doc, "decrypted", "text")) << s.name;

    data = field(s.doc, "encrypted", "text");
    streams->encrypt.apply(data);
    EXPECT_EQ(data, field(s.doc, "encrypted", "cipher")) << s.name;
  }
}

TEST(MtgObfs2Vectors, WrongSecretFailsTheFrame) {
  for (const Snapshot& s : load_snapshots()) {
    const Bytes frame = field(s.doc, "frame");
    SecretKey key{};  // all zeros: not mtg's secret
    const Result<ClientInit> init =
        parse_client_init(std::span<const std::byte, kInitSize>(frame.data(), kInitSize), key);
    EXPECT_FALSE(init.has_value()) << s.name;
  }
}

}  // namespace
}  // namespace mtw::proto
