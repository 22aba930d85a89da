#include "gateway/token_bucket.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace edgegw::gateway {
namespace {

using namespace std::chrono_literals;

const event::TimePoint t0 = event::TimePoint{} + 1000s;

TEST(TokenBucket, starts_full_and_refuses_once_empty) {
  TokenBucket b(3, 10, t0);
  EXPECT_TRUE(b.consume(1, t0));
  EXPECT_TRUE(b.consume(2, t0));
  EXPECT_FALSE(b.consume(1, t0));
  EXPECT_DOUBLE_EQ(b.tokens(t0), 0);
}

TEST(TokenBucket, a_refused_consume_takes_nothing) {
  TokenBucket b(3, 10, t0);
  EXPECT_FALSE(b.consume(4, t0));
  EXPECT_DOUBLE_EQ(b.tokens(t0), 3);
  EXPECT_TRUE(b.consume(3, t0));
}

TEST(TokenBucket, refills_at_its_rate_up_to_its_capacity) {
  TokenBucket b(4, 10, t0);  // 10 tokens/s: one per 100 ms
  ASSERT_TRUE(b.consume(4, t0));
  EXPECT_FALSE(b.consume(1, t0 + 99ms));
  EXPECT_TRUE(b.consume(1, t0 + 100ms));
  EXPECT_FALSE(b.consume(1, t0 + 150ms));
  EXPECT_NEAR(b.tokens(t0 + 250ms), 1.5, 1e-9);
  EXPECT_DOUBLE_EQ(b.tokens(t0 + 1h), 4);  // never more than the capacity
  EXPECT_TRUE(b.consume(4, t0 + 1h));
  EXPECT_FALSE(b.consume(1, t0 + 1h));
}

TEST(TokenBucket, next_token_is_when_the_refill_reaches_it) {
  TokenBucket b(2, 4, t0);          // one token per 250 ms
  EXPECT_EQ(b.next_token(t0), t0);  // it holds one already
  ASSERT_TRUE(b.consume(2, t0));
  const event::TimePoint next = b.next_token(t0);
  EXPECT_GT(next, t0 + 249ms);
  EXPECT_LE(next, t0 + 250ms + 1us);
  EXPECT_FALSE(b.consume(1, next - 1ms));
  EXPECT_TRUE(b.consume(1, next));
  // Two tokens at most are ever there: asking for more waits for the capacity.
  EXPECT_LE(b.next_token(next, 5), next + 500ms + 1us);
  EXPECT_GT(b.next_token(next, 5), next + 499ms);
}

}  // namespace
}  // namespace edgegw::gateway
