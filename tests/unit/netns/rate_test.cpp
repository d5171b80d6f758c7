#include "netns/rate.h"

#include <gtest/gtest.h>

namespace mtw::netns {
namespace {

TEST(WireBps, AddsHeadersOfFullSizeSegments) {
  // 1448 payload bytes travel in a 1514-byte frame.
  EXPECT_EQ(wire_bps(1448), 1514u);
  EXPECT_EQ(wire_bps(2'000'000), 2'091'161u);  // 2e6 * 1514 / 1448 = 2091160.2, rounded up
  EXPECT_EQ(wire_bps(100'000'000), 104'558'012u);
  EXPECT_EQ(wire_bps(0), 0u);
  EXPECT_GT(wire_bps(kMaxRateBps), kMaxRateBps);
  EXPECT_EQ(wire_bps(~std::uint64_t{0}), ~std::uint64_t{0});  // saturates
}

TEST(BurstForRate, IsTenMillisecondsOfTraffic) {
  EXPECT_EQ(burst_for_rate(20'000'000), 25'000u);  // 20 Mbit/s -> 2.5 MB/s * 10 ms
  EXPECT_EQ(burst_for_rate(1'000'000'000), 1'250'000u);
}

TEST(BurstForRate, NeverBelowFourFrames) {
  // 1 Mbit/s * 10 ms = 1250 B, less than one frame: TCP would stall.
  EXPECT_EQ(burst_for_rate(1'000'000), 4 * kFrameBytes);
  EXPECT_EQ(burst_for_rate(kMinRateBps), 4 * kFrameBytes);
}

TEST(BurstForRate, CappedAtSixteenMebibytes) { EXPECT_EQ(burst_for_rate(kMaxRateBps), 16u << 20); }

TEST(QuantumForRate, StaysWithinKernelFriendlyBounds) {
  EXPECT_EQ(quantum_for_rate(100'000), kFrameBytes);  // 1250 B -> one frame
  EXPECT_EQ(quantum_for_rate(20'000'000), 200'000u);  // 250000 clamped
  EXPECT_EQ(quantum_for_rate(5'000'000), 62'500u);
}

TEST(EffectiveBurst, UsesExplicitBurstOrDerivesOne) {
  EXPECT_EQ(*effective_burst(Rate{20'000'000, 0}), 25'000u);
  EXPECT_EQ(*effective_burst(Rate{20'000'000, 50'000}), 50'000u);
}

TEST(EffectiveBurst, RejectsOutOfRangeRateAndTinyBurst) {
  EXPECT_EQ(effective_burst(Rate{0, 0}).error().code, base::Errc::kBadInput);
  EXPECT_EQ(effective_burst(Rate{kMaxRateBps + 1, 0}).error().code, base::Errc::kBadInput);
  EXPECT_EQ(effective_burst(Rate{20'000'000, 100}).error().code, base::Errc::kBadInput);
}

TEST(QueueLimitForRate, IsHundredMillisecondsOfTraffic) {
  EXPECT_EQ(queue_limit_for_rate(20'000'000), 250'000u);  // 2.5 MB/s * 100 ms
  EXPECT_EQ(queue_limit_for_rate(100'000'000), 1'250'000u);
}

TEST(QueueLimitForRate, HoldsAtLeastOneGsoPacket) {
  // 5 Mbit/s * 100 ms = 62.5 kB < a 64 KiB GSO packet, which htb does not
  // split: a smaller limit would drop every such packet.
  EXPECT_EQ(queue_limit_for_rate(5'000'000), kMaxGsoBytes);
  EXPECT_EQ(queue_limit_for_rate(kMinRateBps), kMaxGsoBytes);
  EXPECT_GT(kMaxGsoBytes, 65'536u);
}

TEST(QueueLimitForRate, CappedAtThirtyTwoMebibytes) {
  EXPECT_EQ(queue_limit_for_rate(kMaxRateBps), 32u << 20);
}

TEST(EffectiveQueue, UsesExplicitLimitOrDerivesOne) {
  EXPECT_EQ(*effective_queue(Rate{20'000'000, 0, 0}), 250'000u);
  EXPECT_EQ(*effective_queue(Rate{20'000'000, 0, 400'000}), 400'000u);
}

TEST(EffectiveQueue, RejectsTinyLimitAndBadRate) {
  EXPECT_EQ(effective_queue(Rate{20'000'000, 0, 1514}).error().code, base::Errc::kBadInput);
  EXPECT_EQ(effective_queue(Rate{0, 0, 0}).error().code, base::Errc::kBadInput);
}

}  // namespace
}  // namespace mtw::netns
