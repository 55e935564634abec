#pragma once
// A counter owned by one worker: one writer (the worker's loop), read by other threads
// (the control thread, for /stats). Relaxed load + store rather than fetch_add: no
// read-modify-write, so no locked instruction and no contention on the request path.

#include <atomic>
#include <cstdint>

namespace gw {

class Counter {
 public:
  void add(uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  void set(uint64_t n) { value_.store(n, std::memory_order_relaxed); }
  uint64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

}  // namespace gw
