#pragma once
// A loop-confined pool of reusable objects (exchanges, parsers, write batches) that
// shrinks when it is not needed: trim(), called on a periodic tick, frees half of the
// objects nobody took since the previous tick. Under steady load the pool keeps what the
// load uses; after a burst it decays within a few ticks, and the freed memory serves
// other allocations (idle connections) instead of sitting in a pool.

#include <cstddef>
#include <vector>

namespace gw {

template <typename T>
class FreeList {
 public:
  explicit FreeList(size_t max_size) : max_size_(max_size) {}
  ~FreeList() {
    for (T* item : items_) delete item;
  }
  FreeList(const FreeList&) = delete;
  FreeList& operator=(const FreeList&) = delete;

  // The most recently given object, or nullptr when the pool is empty.
  T* take() {
    if (items_.empty()) return nullptr;
    T* item = items_.back();
    items_.pop_back();
    if (items_.size() < low_water_) low_water_ = items_.size();
    return item;
  }
  // Keeps `item` for reuse; false when the pool is full (the caller deletes it).
  bool give(T* item) {
    if (items_.size() >= max_size_) return false;
    items_.push_back(item);
    return true;
  }
  // Frees half (rounded up) of the objects that stayed unused since the last trim;
  // returns how many.
  size_t trim() {
    size_t unused = low_water_ < items_.size() ? low_water_ : items_.size();
    size_t freed = (unused + 1) / 2;
    for (size_t n = freed; n > 0; --n) {
      delete items_.back();
      items_.pop_back();
    }
    low_water_ = items_.size();
    return freed;
  }
  size_t size() const { return items_.size(); }

 private:
  std::vector<T*> items_;
  size_t max_size_;
  size_t low_water_ = 0;  // the smallest size since the last trim
};

}  // namespace gw
