// The self-probe's comparison: what counts as the same answer.
#include "doctor/answers.h"

#include <gtest/gtest.h>

namespace mtw::doctor {
namespace {

proto::Bytes text(std::string_view s) {
  return proto::Bytes(reinterpret_cast<const std::byte*>(s.data()),
                      reinterpret_cast<const std::byte*>(s.data()) + s.size());
}

proto::Bytes record(unsigned type, std::size_t len, unsigned fill = 0) {
  proto::Bytes r = {std::byte(type), std::byte(3), std::byte(3), std::byte(len >> 8),
                    std::byte(len & 0xff)};
  r.resize(5 + len, std::byte(fill));
  return r;
}

proto::Bytes cat(std::initializer_list<proto::Bytes> parts) {
  proto::Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Answer ans(proto::Bytes d, EndKind e) { return Answer{std::move(d), e, ""}; }

TEST(DoctorAnswers, HttpAnswersDifferingOnlyInDateAreTheSame) {
  auto a = ans(text("HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nDate: Mon, 07 Dec 2026 "
                    "10:00:00 GMT\r\nContent-Length: 3\r\n\r\nbad"),
               EndKind::kFin);
  auto b = ans(text("HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nDate: Mon, 07 Dec 2026 "
                    "10:00:01 GMT\r\nContent-Length: 3\r\n\r\nbad"),
               EndKind::kFin);
  EXPECT_TRUE(compare_answers(a, b).empty());
  b.data = text("HTTP/1.0 200 OK\r\nServer: SimpleHTTP\r\n\r\n");
  const auto d = compare_answers(a, b);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_NE(d[0].find("HTTP/1.0 200 OK"), std::string::npos) << d[0];
}

TEST(DoctorAnswers, CloseKindMatters) {
  const auto d = compare_answers(ans({}, EndKind::kRst), ans({}, EndKind::kFin));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_NE(d[0].find("rst"), std::string::npos);
  EXPECT_TRUE(compare_answers(ans({}, EndKind::kOpen), ans({}, EndKind::kOpen)).empty());
}

TEST(DoctorAnswers, TlsRecordsCompareByTypeAndLengthWithSlackOnEncrypted) {
  const auto ours = cat({record(0x16, 122), record(0x14, 1), record(0x17, 1000)});
  const auto mask = cat({record(0x16, 122), record(0x14, 1), record(0x17, 1000 + kEncryptedSlack)});
  EXPECT_TRUE(compare_answers(ans(ours, EndKind::kOpen), ans(mask, EndKind::kOpen)).empty());
  const auto other =
      cat({record(0x16, 122), record(0x14, 1), record(0x17, 1001 + kEncryptedSlack)});
  EXPECT_FALSE(compare_answers(ans(ours, EndKind::kOpen), ans(other, EndKind::kOpen)).empty());
  const auto fewer = cat({record(0x16, 122), record(0x14, 1)});
  EXPECT_FALSE(compare_answers(ans(ours, EndKind::kOpen), ans(fewer, EndKind::kOpen)).empty());
  const auto longer_hello = cat({record(0x16, 123), record(0x14, 1), record(0x17, 1000)});
  EXPECT_FALSE(
      compare_answers(ans(ours, EndKind::kOpen), ans(longer_hello, EndKind::kOpen)).empty());
}

TEST(DoctorAnswers, AlertsMustBeTheSameAlert) {
  const auto a = record(0x15, 2, 0x02);
  auto b = record(0x15, 2, 0x02);
  EXPECT_TRUE(compare_answers(ans(a, EndKind::kFin), ans(b, EndKind::kFin)).empty());
  b[6] = std::byte{0x28};
  EXPECT_FALSE(compare_answers(ans(a, EndKind::kFin), ans(b, EndKind::kFin)).empty());
}

TEST(DoctorAnswers, TlsAgainstHttpOrSilenceDiffers) {
  const auto tls = cat({record(0x16, 122), record(0x14, 1)});
  EXPECT_FALSE(compare_answers(ans(tls, EndKind::kOpen),
                               ans(text("HTTP/1.0 400 Bad\r\n\r\n"), EndKind::kOpen))
                   .empty());
  EXPECT_FALSE(compare_answers(ans(tls, EndKind::kOpen), ans({}, EndKind::kOpen)).empty());
}

TEST(DoctorSelfProbe, IndistinguishableOrListsTheDifferences) {
  std::vector<ProbeOutcome> same = {
      {"HTTP GET", ans(text("HTTP/1.1 400 x\r\n\r\n"), EndKind::kFin),
       ans(text("HTTP/1.1 400 x\r\n\r\n"), EndKind::kFin)},
      {"random bytes", ans({}, EndKind::kOpen), ans({}, EndKind::kOpen)}};
  const Check ok = judge_self_probe("127.0.0.1:443", "198.18.0.2:443", same);
  EXPECT_EQ(ok.verdict, Verdict::kPass);
  EXPECT_NE(ok.reason.find("indistinguishable"), std::string::npos);
  same[1].ours.end = EndKind::kRst;
  const Check bad = judge_self_probe("127.0.0.1:443", "198.18.0.2:443", same);
  EXPECT_EQ(bad.verdict, Verdict::kFail);
  EXPECT_NE(bad.reason.find("1 of 2"), std::string::npos);
  EXPECT_NE(bad.values.back().second.find("DIFFERENT"), std::string::npos);
  same[0].mask = Answer{{}, EndKind::kNoConnect, "refused"};
  EXPECT_EQ(judge_self_probe("127.0.0.1:443", "198.18.0.2:443", same).verdict, Verdict::kSkip);
}

TEST(DoctorAnswers, DescribesEachKind) {
  EXPECT_EQ(describe_answer(ans({}, EndKind::kFin)), "nothing, fin");
  EXPECT_EQ(describe_answer(ans(cat({record(0x16, 3), record(0x17, 9)}), EndKind::kOpen)),
            "TLS 16:3 17:9, open");
  EXPECT_EQ(describe_answer(ans(text("HTTP/1.1 400 Bad Request\r\n"), EndKind::kFin)),
            "HTTP/1.1 400 Bad Request (26 bytes), fin");
}

}  // namespace
}  // namespace mtw::doctor
