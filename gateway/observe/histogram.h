#pragma once
// A duration histogram owned by one worker: one writer (the worker's loop), read by the
// control thread on a /metrics scrape. Fixed, log-spaced buckets from 0.5 ms to 10 s
// (Prometheus' `le` bounds); the counts are per bucket (not cumulative), so observing
// touches two counters: the bucket and the sum. Relaxed loads and stores, as gw::Counter.

#include <cstddef>
#include <cstdint>

#include "gateway/core/counter.h"

namespace gw::observe {

// Upper bounds in microseconds; a last, implicit bucket holds everything above.
inline constexpr uint64_t kDurationBoundsUs[] = {
    500,     1'000,   2'500,   5'000,     10'000,    25'000,    50'000,
    100'000, 250'000, 500'000, 1'000'000, 2'500'000, 5'000'000, 10'000'000};
inline constexpr size_t kDurationBounds = sizeof kDurationBoundsUs / sizeof kDurationBoundsUs[0];

class DurationHistogram {
 public:
  void observe(uint64_t us) { observeIn(bucketFor(us), us); }
  // For one value observed in several histograms: find its bucket once.
  static size_t bucketFor(uint64_t us) {
    size_t lo = 0, hi = kDurationBounds;  // the answer is in [lo, hi]
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (us > kDurationBoundsUs[mid]) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }
  void observeIn(size_t bucket, uint64_t us) {
    buckets_[bucket].add();
    sum_us_.add(us);
  }
  // Bucket i (0..kDurationBounds; the last is +Inf), not cumulative.
  uint64_t bucket(size_t i) const { return buckets_[i].get(); }
  uint64_t sumUs() const { return sum_us_.get(); }

 private:
  Counter buckets_[kDurationBounds + 1];
  Counter sum_us_;
};

}  // namespace gw::observe
