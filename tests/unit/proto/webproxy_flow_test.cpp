// Per-stream flow control: uplink credit is returned only for bytes that
// reached the backend, grants are coalesced (256 KiB or 20 ms), overruns and
// bad WINDOWs are refused without changing state, downlink honours credit.
#include "proto/webproxy_flow.h"

#include <gtest/gtest.h>

namespace mtw::proto {
namespace {

TEST(WebStreamFlow, StartsWithTheProtocolWindowBothWays) {
  const WebStreamFlow f;
  EXPECT_EQ(f.uplink_credit(), 4u * 1024 * 1024);
  EXPECT_EQ(f.downlink_credit(), 4u * 1024 * 1024);
  EXPECT_EQ(f.downlink_allowance(), 64u * 1024);
}

TEST(WebStreamFlow, ReceivedDataConsumesCreditAndIsBuffered) {
  WebStreamFlow f;
  ASSERT_TRUE(f.on_data_received(1000));
  EXPECT_EQ(f.uplink_credit(), kWebInitialWindow - 1000);
  EXPECT_EQ(f.uplink_buffered(), 1000u);
}

TEST(WebStreamFlow, DataUpToTheWholeWindowIsAccepted) {
  WebStreamFlow f;
  EXPECT_TRUE(f.on_data_received(kWebInitialWindow));
  EXPECT_EQ(f.uplink_credit(), 0u);
}

TEST(WebStreamFlow, DataBeyondCreditIsAnOverrunAndChangesNothing) {
  WebStreamFlow f;
  ASSERT_TRUE(f.on_data_received(kWebInitialWindow - 10));
  const auto r = f.on_data_received(11);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), WebReason::kWindowOverrun);
  EXPECT_EQ(f.uplink_credit(), 10u);
  EXPECT_EQ(f.uplink_buffered(), kWebInitialWindow - 10);
}

TEST(WebStreamFlow, NoGrantForBytesThatOnlyArrived) {
  WebStreamFlow f;
  ASSERT_TRUE(f.on_data_received(kWebInitialWindow));
  EXPECT_EQ(f.take_grant(1'000'000), 0u);  // however late: nothing reached the backend
  EXPECT_EQ(f.grant_deadline_ms(), std::nullopt);
}

TEST(WebStreamFlow, SmallDeliveryIsGrantedAfterTheDelay) {
  WebStreamFlow f;
  ASSERT_TRUE(f.on_data_received(500));
  f.on_delivered(300, 1000);
  EXPECT_EQ(f.grant_deadline_ms(), 1000 + kWebGrantDelayMs);
  EXPECT_EQ(f.take_grant(1000 + kWebGrantDelayMs - 1), 0u);
  EXPECT_EQ(f.take_grant(1000 + kWebGrantDelayMs), 300u);
  EXPECT_EQ(f.uplink_credit(), kWebInitialWindow - 200);
  EXPECT_EQ(f.uplink_buffered(), 200u);
  EXPECT_EQ(f.grant_deadline_ms(), std::nullopt);
}

TEST(WebStreamFlow, DelayCountsFromTheFirstPendingByte) {
  WebStreamFlow f;
  ASSERT_TRUE(f.on_data_received(500));
  f.on_delivered(100, 1000);
  f.on_delivered(100, 1015);
  EXPECT_EQ(f.take_grant(1020), 200u);
}

TEST(WebStreamFlow, BatchSizedDeliveryIsGrantedAtOnce) {
  WebStreamFlow f;
  ASSERT_TRUE(f.on_data_received(kWebGrantBatch + 5));
  f.on_delivered(kWebGrantBatch, 1000);
  EXPECT_EQ(f.grant_deadline_ms(), 1000u);
  EXPECT_EQ(f.take_grant(1000), kWebGrantBatch);
}

TEST(WebStreamFlow, GrantedCreditLetsTheAppSendAgain) {
  WebStreamFlow f;
  ASSERT_TRUE(f.on_data_received(kWebInitialWindow));
  f.on_delivered(kWebInitialWindow, 5);
  EXPECT_EQ(f.take_grant(5), kWebInitialWindow);
  EXPECT_TRUE(f.on_data_received(kWebInitialWindow));
  EXPECT_FALSE(f.on_data_received(1));
}

TEST(WebStreamFlow, DeliveringNothingStartsNoTimer) {
  WebStreamFlow f;
  f.on_delivered(0, 7);
  EXPECT_EQ(f.grant_deadline_ms(), std::nullopt);
}

TEST(WebStreamFlow, SentDataConsumesDownlinkCredit) {
  WebStreamFlow f;
  f.on_data_sent(kWebInitialWindow - 100);
  EXPECT_EQ(f.downlink_credit(), 100u);
  EXPECT_EQ(f.downlink_allowance(), 100u);
  f.on_data_sent(100);
  EXPECT_EQ(f.downlink_allowance(), 0u);
}

TEST(WebStreamFlow, WindowRaisesDownlinkCredit) {
  WebStreamFlow f;
  f.on_data_sent(kWebInitialWindow);
  ASSERT_TRUE(f.on_window(4096));
  EXPECT_EQ(f.downlink_credit(), 4096u);
  EXPECT_EQ(f.downlink_allowance(), 4096u);
}

TEST(WebStreamFlow, ZeroWindowIsRefused) {
  WebStreamFlow f;
  EXPECT_EQ(f.on_window(0).error(), WebReason::kZeroWindow);
  EXPECT_EQ(f.downlink_credit(), kWebInitialWindow);
}

TEST(WebStreamFlow, WindowPastTheCreditCapIsRefusedAndChangesNothing) {
  WebStreamFlow f;
  ASSERT_TRUE(f.on_window(static_cast<std::uint32_t>(kMaxWebCredit - kWebInitialWindow)));
  EXPECT_EQ(f.downlink_credit(), kMaxWebCredit);
  EXPECT_EQ(f.on_window(1).error(), WebReason::kWindowOverflow);
  EXPECT_EQ(f.downlink_credit(), kMaxWebCredit);
}

TEST(WebStreamFlow, MaximalWindowValueDoesNotWrap) {
  WebStreamFlow f;
  EXPECT_EQ(f.on_window(0xFFFFFFFFu).error(), WebReason::kWindowOverflow);
}

}  // namespace
}  // namespace mtw::proto
