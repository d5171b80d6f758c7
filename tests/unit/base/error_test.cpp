#include "base/error.h"

#include <gtest/gtest.h>

namespace mtw::base {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return fail(Errc::kBadInput, "value must be positive");
  return v;
}

TEST(Result, CarriesValueOrError) {
  auto ok = parse_positive(3);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(*ok, 3);
  auto bad = parse_positive(-1);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, Errc::kBadInput);
  EXPECT_EQ(bad.error().to_string(), "bad_input: value must be positive");
}

TEST(Error, FormatsErrnoWithItsMeaning) {
  Error e = fail_errno("open /x", ENOENT).value();
  EXPECT_EQ(e.code, Errc::kSyscall);
  EXPECT_EQ(e.to_string(), "syscall: open /x errno=2 (No such file or directory)");
}

}  // namespace
}  // namespace mtw::base
