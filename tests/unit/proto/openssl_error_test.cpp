#include "proto/openssl_error.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>

namespace mtw::proto {
namespace {

TEST(OpensslReason, EmptyQueueGivesTheCallersText) {
  ERR_clear_error();
  EXPECT_EQ(openssl_reason("connection closed or timed out"), "connection closed or timed out");
}

TEST(OpensslReason, NamesTheQueuedErrorAndEmptiesTheQueue) {
  ERR_clear_error();
  // A failing libcrypto call queues its error: a cipher that does not exist.
  EXPECT_EQ(EVP_CIPHER_fetch(nullptr, "no-such-cipher", nullptr), nullptr);
  const unsigned long queued = ERR_peek_error();
  ASSERT_NE(queued, 0u);
  char want[256];
  ERR_error_string_n(queued, want, sizeof want);
  EXPECT_EQ(openssl_reason("none"), want);
  EXPECT_EQ(ERR_peek_error(), 0u);
  EXPECT_EQ(openssl_reason("none"), "none");
}

}  // namespace
}  // namespace mtw::proto
