#pragma once
// A fixed-size table of token buckets shared by every worker thread, without a lock.
//
// Each bucket is one 64-bit "theoretical arrival time" (GCRA, the token bucket written
// as a single timestamp): a request is allowed when, after adding one emission interval
// T = 1/rate, the bucket is no more than `burst` intervals ahead of now. One
// compare-and-swap per request; a lost race retries with the fresh value.
//
// Keys are 64-bit hashes in an open-addressed array of `capacity` slots (a power of two),
// probed at most kProbes times. A full probe window reuses the slot whose bucket has been
// idle longest if that bucket is full again (no information lost); if every slot in the
// window is busy, the key shares the busiest-recently slot's bucket, which can only make
// limiting stricter for those keys. So memory is bounded whatever the key count.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>

namespace gw::filters::rate_limit {

class BucketTable {
 public:
  static constexpr int kProbes = 8;

  struct Decision {
    bool allowed = false;
    uint64_t remaining = 0;       // whole requests still allowed right now
    uint64_t reset_us = 0;        // until the bucket is full again
    uint64_t retry_after_us = 0;  // when refused: until one request is allowed
  };

  // `interval_us`: microseconds per token (1/rate); `burst`: bucket size (>= 1).
  BucketTable(size_t capacity, uint64_t interval_us, uint64_t burst);

  // Takes one token for `key` at time `now_us` (a monotonic clock).
  Decision take(uint64_t key_hash, uint64_t now_us);

  size_t capacity() const { return mask_ + 1; }
  uint64_t intervalUs() const { return interval_us_; }
  uint64_t burst() const { return burst_; }

  static uint64_t hash(std::string_view key);

 private:
  struct Slot {
    std::atomic<uint64_t> key{0};  // 0: empty
    std::atomic<uint64_t> tat{0};  // theoretical arrival time, microseconds
  };
  Slot& find(uint64_t key, uint64_t now_us);

  std::unique_ptr<Slot[]> slots_;
  size_t mask_;
  uint64_t interval_us_;
  uint64_t burst_;
};

}  // namespace gw::filters::rate_limit
