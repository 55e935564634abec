#define CATCH_CONFIG_MAIN
#include "filters/rate_limit/rate_limit.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "filters/rate_limit/bucket_table.h"

using namespace gw::filters::rate_limit;

constexpr uint64_t kSecond = 1'000'000;

TEST_CASE("rates parse as a count per unit") {
  uint64_t interval = 0;
  uint64_t count = 0;
  REQUIRE(parseRate("100/s", interval, count));
  CHECK(interval == 10'000);
  CHECK(count == 100);
  REQUIRE(parseRate("30/m", interval, count));
  CHECK(interval == 2 * kSecond);
  REQUIRE(parseRate("1/h", interval, count));
  CHECK(interval == 3600 * kSecond);
  for (const char* bad : {"", "100", "/s", "0/s", "10/d", "-1/s", "1e3/s", "x/s", "100/ s"}) {
    INFO(bad);
    CHECK_FALSE(parseRate(bad, interval, count));
  }
}

TEST_CASE("a bucket allows the burst at once, then one per interval") {
  BucketTable t(16, kSecond, 3);  // 1/s, burst 3
  uint64_t now = 1000 * kSecond;
  uint64_t key = BucketTable::hash("10.0.0.1");
  auto a = t.take(key, now);
  CHECK(a.allowed);
  CHECK(a.remaining == 2);
  CHECK(t.take(key, now).remaining == 1);
  CHECK(t.take(key, now).remaining == 0);
  auto refused = t.take(key, now);
  CHECK_FALSE(refused.allowed);
  CHECK(refused.retry_after_us == kSecond);
  CHECK(refused.reset_us == 3 * kSecond);
  // Another key is independent.
  CHECK(t.take(BucketTable::hash("10.0.0.2"), now).allowed);
  // Half an interval later: still refused; a full interval: one more.
  CHECK_FALSE(t.take(key, now + kSecond / 2).allowed);
  CHECK(t.take(key, now + kSecond).allowed);
  CHECK_FALSE(t.take(key, now + kSecond).allowed);
  // Idle long enough: the full burst again, never more.
  now += 100 * kSecond;
  int allowed = 0;
  for (int i = 0; i < 10; ++i) allowed += t.take(key, now).allowed ? 1 : 0;
  CHECK(allowed == 3);
}

TEST_CASE("many distinct keys cannot grow the table; a busy key keeps its limit") {
  BucketTable t(64, kSecond, 2);
  uint64_t now = 1000 * kSecond;
  uint64_t victim = BucketTable::hash("victim");
  CHECK(t.take(victim, now).allowed);
  CHECK(t.take(victim, now).allowed);
  for (int i = 0; i < 100000; ++i) t.take(BucketTable::hash("k" + std::to_string(i)), now);
  CHECK(t.capacity() == 64);
  // The flood may share or evict buckets, but it never lets the victim exceed its burst.
  CHECK_FALSE(t.take(victim, now).allowed);
}

TEST_CASE("the limit holds across threads: exactly `burst` of many concurrent takes win") {
  BucketTable t(1024, 3600 * kSecond, 500);
  uint64_t key = BucketTable::hash("shared");
  uint64_t now = 1000 * kSecond;
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) allowed += t.take(key, now).allowed ? 1 : 0;
    });
  }
  for (auto& th : threads) th.join();
  CHECK(allowed.load() == 500);
}
