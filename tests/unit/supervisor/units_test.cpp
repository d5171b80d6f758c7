#include "supervisor/units.h"

#include <gtest/gtest.h>

namespace mtw::supervisor {
namespace {

TEST(ParseSize, PlainDigitsAreBytes) { EXPECT_EQ(parse_size("1234").value(), 1234u); }

TEST(ParseSize, BinaryAndDecimalSuffixesDiffer) {
  EXPECT_EQ(parse_size("10GiB").value(), 10ull << 30);
  EXPECT_EQ(parse_size("500MB").value(), 500'000'000u);
  EXPECT_EQ(parse_size("2KiB").value(), 2048u);
  EXPECT_EQ(parse_size("3k").value(), 3000u);
  EXPECT_EQ(parse_size("1TiB").value(), 1ull << 40);
}

TEST(ParseSize, SuffixIsCaseInsensitiveAndMayFollowASpace) {
  EXPECT_EQ(parse_size("10 gib").value(), 10ull << 30);
  EXPECT_EQ(parse_size("7b").value(), 7u);
}

TEST(ParseSize, FractionRoundsDown) {
  EXPECT_EQ(parse_size("1.5GiB").value(), 3ull << 29);
  EXPECT_EQ(parse_size("0.0001KB").value(), 0u);
}

TEST(ParseSize, RejectsUnknownUnitEmptyAndNegative) {
  EXPECT_EQ(parse_size("10 parsecs").error().code, Errc::kBadInput);
  EXPECT_EQ(parse_size("").error().code, Errc::kBadInput);
  EXPECT_EQ(parse_size("-5MB").error().code, Errc::kBadInput);
  EXPECT_EQ(parse_size("1.GB").error().code, Errc::kBadInput);
  EXPECT_NE(parse_size("5 furlongs").error().context.find("unknown unit"), std::string::npos);
}

TEST(ParseSize, RejectsValuesBeyondInt64) {
  EXPECT_EQ(parse_size("9223372036854775807").value(), 9223372036854775807ull);
  EXPECT_EQ(parse_size("9223372036854775808").error().code, Errc::kTooLarge);
  EXPECT_EQ(parse_size("9000000TiB").error().code, Errc::kTooLarge);
}

TEST(ParseRate, BitUnitsInThousands) {
  EXPECT_EQ(parse_rate("20mbit").value(), 20'000'000u);
  EXPECT_EQ(parse_rate("2Mbit/s").value(), 2'000'000u);
  EXPECT_EQ(parse_rate("500kbit").value(), 500'000u);
  EXPECT_EQ(parse_rate("1gbit").value(), 1'000'000'000u);
  EXPECT_EQ(parse_rate("64000").value(), 64'000u);
}

TEST(ParseRate, BpsSpellingMeansBitsNotTcBytes) {
  EXPECT_EQ(parse_rate("20Mbps").value(), 20'000'000u);
  EXPECT_EQ(parse_rate("100kbps").value(), 100'000u);
}

TEST(ParseRate, ByteUnitsNeedCapitalBAndMultiplyByEight) {
  EXPECT_EQ(parse_rate("2MB/s").value(), 16'000'000u);
  EXPECT_EQ(parse_rate("1MiB/s").value(), 8u << 20);
  EXPECT_EQ(parse_rate("2.5MB/s").value(), 20'000'000u);
}

TEST(ParseRate, BinaryBitUnits) { EXPECT_EQ(parse_rate("1mibit").value(), 1u << 20); }

TEST(ParseRate, RejectsUnknownUnit) {
  EXPECT_EQ(parse_rate("20 mph").error().code, Errc::kBadInput);
  EXPECT_EQ(parse_rate("mbit").error().code, Errc::kBadInput);
}

TEST(FormatUnits, UsesTheLargestExactUnit) {
  EXPECT_EQ(format_size(10ull << 30), "10GiB");
  EXPECT_EQ(format_size(1000), "1000B");
  EXPECT_EQ(format_rate(20'000'000), "20mbit");
  EXPECT_EQ(format_rate(1234), "1234bit");
}

}  // namespace
}  // namespace mtw::supervisor
