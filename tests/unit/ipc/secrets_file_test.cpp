#include "ipc/secrets_file.h"

#include <gtest/gtest.h>

namespace mtw::ipc {
namespace {

constexpr std::string_view kSimple = "0123456789abcdef0123456789abcdef";
// ee + key + "example.com"
constexpr std::string_view kTls = "ee0123456789abcdef0123456789abcdef6578616d706c652e636f6d";

TEST(SecretsFile, WhatTheSupervisorWritesTheWorkerReads) {
  const std::vector<std::string> secrets = {std::string(kSimple), std::string(kTls),
                                            "dd" + std::string(kSimple)};
  auto s = parse_secrets_text(format_secrets_file(secrets));
  ASSERT_TRUE(s) << s.error().to_string();
  ASSERT_EQ(s->size(), 3u);
  for (std::size_t i = 0; i < secrets.size(); ++i)
    EXPECT_EQ(proto::format_hex((*s)[i]), secrets[i]);
}

TEST(SecretsFile, NoSecretsIsAnError) { EXPECT_FALSE(parse_secrets_text(format_secrets_file({}))); }

TEST(SecretsFile, SkipsCommentsAndBlankLines) {
  auto s = parse_secrets_text(std::string("# users\n\n  ") + std::string(kSimple) + "  # alice\n" +
                              std::string(kTls) + "\n");
  ASSERT_TRUE(s) << s.error().to_string();
  ASSERT_EQ(s->size(), 2u);
  EXPECT_EQ((*s)[1].kind, proto::SecretKind::kFakeTls);
  EXPECT_EQ((*s)[1].domain, "example.com");
}

TEST(SecretsFile, ReportsLineNumberOfBadSecret) {
  auto s = parse_secrets_text(std::string(kSimple) + "\nnot-a-secret\n");
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().context.find("line 2"), std::string::npos);
  EXPECT_EQ(s.error().context.find("not-a-secret"), std::string::npos);
}

TEST(SecretsFile, RejectsEmptyFile) { EXPECT_FALSE(parse_secrets_text("# nothing\n")); }

}  // namespace
}  // namespace mtw::ipc
