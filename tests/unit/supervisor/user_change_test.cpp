#include "supervisor/user_change.h"

#include <gtest/gtest.h>

namespace mtw::supervisor {
namespace {

constexpr UnixSeconds kNow = 1'714'521'600;
const char* const kSecretA = "0123456789abcdef0123456789abcdef";
const char* const kSecretB = "fedcba9876543210fedcba9876543210";

StoredUser alice() {
  StoredUser u;
  u.id = 1;
  u.name = "alice";
  u.secrets = {kSecretA};
  return u;
}

TEST(ClassifyChange, ANewUserIsToldToTheGate) {
  const StoredUser u = alice();
  const UserChange c = classify_change(nullptr, Limits{}, u, Limits{}, kNow);
  EXPECT_TRUE(c.gate_table);
  EXPECT_FALSE(c.reload_secrets);
  EXPECT_FALSE(c.limits);
  EXPECT_TRUE(c.now_servable);
}

TEST(ClassifyChange, ARateChangeTouchesThatUsersPolicyOnlyNotTheGate) {
  StoredUser before = alice(), after = alice();
  after.overrides.rate_down_bps = 2'000'000;
  Limits lb, la;
  la.rate_down_bps = 2'000'000;
  const UserChange c = classify_change(&before, lb, after, la, kNow);
  EXPECT_TRUE(c.limits);
  EXPECT_FALSE(c.gate_table);
  EXPECT_FALSE(c.reload_secrets);
}

TEST(ClassifyChange, AWeightChangeOnlyReDividesTheBudget) {
  StoredUser before = alice(), after = alice();
  after.overrides.bandwidth_weight = 3;
  Limits lb, la;
  la.bandwidth_weight = 3;
  const UserChange c = classify_change(&before, lb, after, la, kNow);
  EXPECT_TRUE(c.bandwidth_weight);
  EXPECT_FALSE(c.limits);
  EXPECT_FALSE(c.gate_table);
  EXPECT_FALSE(c.reload_secrets);
  // With a rate change too, the policy is re-applied as well.
  la.rate_up_bps = 4'000'000;
  const UserChange both = classify_change(&before, lb, after, la, kNow);
  EXPECT_TRUE(both.bandwidth_weight);
  EXPECT_TRUE(both.limits);
  // A rate change alone leaves the weight's flag clear.
  lb.bandwidth_weight = 3;
  EXPECT_FALSE(classify_change(&before, lb, after, la, kNow).bandwidth_weight);
}

TEST(ClassifyChange, ACommentOrLaterExpiryChangesNothingRunning) {
  StoredUser before = alice(), after = alice();
  after.comment = "paid until June";
  after.expires_at = kNow + 86'400;
  const UserChange c = classify_change(&before, Limits{}, after, Limits{}, kNow);
  EXPECT_FALSE(c.limits);
  EXPECT_FALSE(c.gate_table);
  EXPECT_FALSE(c.reload_secrets);
}

TEST(ClassifyChange, NewSecretsGoToTheGateAndTheWorker) {
  StoredUser before = alice(), after = alice();
  after.secrets = {kSecretA, kSecretB};
  const UserChange c = classify_change(&before, Limits{}, after, Limits{}, kNow);
  EXPECT_TRUE(c.gate_table);
  EXPECT_TRUE(c.reload_secrets);
}

TEST(ClassifyChange, DisablingOrExpiringTakesTheUserOffTheGate) {
  StoredUser before = alice(), disabled = alice(), expired = alice();
  disabled.enabled = false;
  expired.expires_at = kNow;  // expiry is exclusive: gone at that second
  for (const StoredUser& after : {disabled, expired}) {
    const UserChange c = classify_change(&before, Limits{}, after, Limits{}, kNow);
    EXPECT_TRUE(c.gate_table);
    EXPECT_TRUE(c.was_servable);
    EXPECT_FALSE(c.now_servable);
  }
}

}  // namespace
}  // namespace mtw::supervisor
