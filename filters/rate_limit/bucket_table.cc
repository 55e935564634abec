#include "filters/rate_limit/bucket_table.h"

namespace gw::filters::rate_limit {

namespace {
size_t roundUpPow2(size_t n) {
  size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}
}  // namespace

BucketTable::BucketTable(size_t capacity, uint64_t interval_us, uint64_t burst)
    : slots_(new Slot[roundUpPow2(capacity < 1 ? 1 : capacity)]),
      mask_(roundUpPow2(capacity < 1 ? 1 : capacity) - 1),
      interval_us_(interval_us < 1 ? 1 : interval_us),
      burst_(burst < 1 ? 1 : burst) {}

uint64_t BucketTable::hash(std::string_view key) {
  // FNV-1a, then a finaliser so nearby keys spread over the table; never 0 (= empty).
  uint64_t h = 1469598103934665603ull;
  for (char c : key) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h == 0 ? 1 : h;
}

BucketTable::Slot& BucketTable::find(uint64_t key, uint64_t now_us) {
  size_t start = static_cast<size_t>(key) & mask_;
  Slot* stalest = nullptr;
  uint64_t stalest_tat = UINT64_MAX;
  for (int i = 0; i < kProbes; ++i) {
    Slot& slot = slots_[(start + static_cast<size_t>(i)) & mask_];
    uint64_t k = slot.key.load(std::memory_order_acquire);
    if (k == key) return slot;
    if (k == 0) {
      uint64_t expected = 0;
      if (slot.key.compare_exchange_strong(expected, key, std::memory_order_acq_rel)) {
        return slot;
      }
      if (expected == key) return slot;  // another worker claimed it for the same key
      continue;
    }
    uint64_t tat = slot.tat.load(std::memory_order_relaxed);
    if (tat < stalest_tat) {
      stalest_tat = tat;
      stalest = &slot;
    }
  }
  // Window full. A bucket whose TAT is in the past is full: reusing it loses nothing.
  if (stalest != nullptr && stalest_tat <= now_us) {
    uint64_t old = stalest->key.load(std::memory_order_relaxed);
    if (stalest->key.compare_exchange_strong(old, key, std::memory_order_acq_rel)) {
      return *stalest;
    }
  }
  // Every bucket here is in use: share the one furthest from refusing (stricter, bounded).
  return stalest != nullptr ? *stalest : slots_[start];
}

BucketTable::Decision BucketTable::take(uint64_t key_hash, uint64_t now_us) {
  Slot& slot = find(key_hash, now_us);
  uint64_t limit = interval_us_ * burst_;  // how far ahead of now the TAT may run
  uint64_t tat = slot.tat.load(std::memory_order_relaxed);
  Decision d;
  for (;;) {
    uint64_t base = tat > now_us ? tat : now_us;
    uint64_t next = base + interval_us_;
    if (next - now_us > limit) {
      d.allowed = false;
      d.remaining = 0;
      d.retry_after_us = next - now_us - limit;
      d.reset_us = tat - now_us;
      return d;
    }
    if (slot.tat.compare_exchange_weak(tat, next, std::memory_order_relaxed)) {
      d.allowed = true;
      d.remaining = (limit - (next - now_us)) / interval_us_;
      d.reset_us = next - now_us;
      return d;
    }
  }
}

}  // namespace gw::filters::rate_limit
