#include "ipc/gate_table.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/unique_fd.h"

namespace mtw::ipc {
namespace {

constexpr std::string_view kSimple = "0123456789abcdef0123456789abcdef";
// ee + key + "example.com"
constexpr std::string_view kTls = "ee0123456789abcdef0123456789abcdef6578616d706c652e636f6d";

TEST(GateTable, WhatTheSupervisorWritesTheGateReads) {
  std::string text;
  append_gate_table_line(text, 7, kSimple);
  append_gate_table_line(text, 4294967295u, kTls);
  append_gate_table_line(text, 7, "dd" + std::string(kSimple));
  auto t = parse_gate_table(text);
  ASSERT_TRUE(t) << t.error().to_string();
  ASSERT_EQ(t->size(), 3u);
  EXPECT_EQ((*t)[0].user, 7u);
  EXPECT_EQ((*t)[0].secret.kind, proto::SecretKind::kSimple);
  EXPECT_EQ((*t)[1].user, 4294967295u);
  EXPECT_EQ((*t)[1].secret.domain, "example.com");
  EXPECT_EQ((*t)[2].user, 7u);
  EXPECT_EQ(proto::format_hex((*t)[2].secret), "dd" + std::string(kSimple));
}

TEST(GateTable, ParsesUsersCommentsAndBlankLines) {
  std::string text = "# users\n\n7 " + std::string(kSimple) + "\n  8\t" + std::string(kTls) +
                     "  \n7 dd" + std::string(kSimple) + "\r\n";
  auto t = parse_gate_table(text);
  ASSERT_TRUE(t) << t.error().to_string();
  ASSERT_EQ(t->size(), 3u);
  EXPECT_EQ((*t)[0].user, 7u);
  EXPECT_EQ((*t)[0].secret.kind, proto::SecretKind::kSimple);
  EXPECT_EQ((*t)[1].user, 8u);
  EXPECT_EQ((*t)[1].secret.domain, "example.com");
  EXPECT_EQ((*t)[2].user, 7u);
  EXPECT_EQ((*t)[2].secret.kind, proto::SecretKind::kSecure);
}

TEST(GateTable, EmptyTableIsValid) {
  auto t = parse_gate_table("");
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->empty());
  t = parse_gate_table("# nobody\n\n");
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->empty());
}

TEST(GateTable, BadLineNamesTheLineAndNeverTheSecret) {
  const std::string secret = "0123456789abcdef0123456789abcdeZ";  // one bad digit
  for (const std::string& line :
       {"1 " + secret, "x " + std::string(kSimple), std::string(kSimple),
        "4294967296 " + std::string(kSimple), "1 " + std::string(kSimple) + " extra"}) {
    auto t = parse_gate_table("1 " + std::string(kSimple) + "\n# c\n" + line + "\n");
    ASSERT_FALSE(t) << line;
    EXPECT_NE(t.error().context.find("line 3"), std::string::npos) << t.error().context;
    EXPECT_EQ(t.error().context.find(secret), std::string::npos);
    EXPECT_EQ(t.error().context.find(kSimple), std::string::npos);
  }
}

TEST(GateTable, ReadsFromOffsetZeroWhateverThePosition) {
  base::UniqueFd fd(::memfd_create("table", MFD_CLOEXEC));
  ASSERT_TRUE(fd);
  std::string text = "42 " + std::string(kSimple) + "\n";
  ASSERT_EQ(::write(fd.get(), text.data(), text.size()), static_cast<ssize_t>(text.size()));
  // The position is at EOF now; the reader must not care.
  auto t = read_gate_table(fd.get());
  ASSERT_TRUE(t) << t.error().to_string();
  ASSERT_EQ(t->size(), 1u);
  EXPECT_EQ((*t)[0].user, 42u);
  EXPECT_EQ(::lseek(fd.get(), 0, SEEK_CUR), static_cast<off_t>(text.size()));
}

TEST(GateTable, RejectsTablesOver64MiB) {
  base::UniqueFd fd(::memfd_create("table", MFD_CLOEXEC));
  ASSERT_TRUE(fd);
  ASSERT_EQ(::ftruncate(fd.get(), kMaxGateTableBytes + 1), 0);
  auto t = read_gate_table(fd.get());
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, base::Errc::kTooLarge);
}

}  // namespace
}  // namespace mtw::ipc
