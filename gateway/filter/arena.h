#pragma once
// A per-request bump allocator. Each exchange owns one (pooled with the exchange), so a
// warm worker serves a request's filter objects and strings without touching the heap:
// reset() runs the destructors and keeps the first block for the next request.
// Loop-confined; not thread-safe.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace gw::filter {

class Arena {
 public:
  static constexpr size_t kBlockSize = 4096;

  Arena() = default;
  ~Arena() { reset(); }
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  void* allocate(size_t size, size_t align = alignof(std::max_align_t));

  // Constructs a T in the arena; its destructor runs at reset().
  template <class T, class... Args>
  T* make(Args&&... args) {
    void* at = allocate(sizeof(T), alignof(T));
    T* object = new (at) T(std::forward<Args>(args)...);
    if constexpr (!std::is_trivially_destructible_v<T>) {
      auto* node = static_cast<Cleanup*>(allocate(sizeof(Cleanup), alignof(Cleanup)));
      node->fn = [](void* p) { static_cast<T*>(p)->~T(); };
      node->object = object;
      node->next = cleanups_;
      cleanups_ = node;
    }
    return object;
  }

  // A copy of `text` that lives until reset().
  std::string_view copy(std::string_view text) {
    if (text.empty()) return {};
    char* at = static_cast<char*>(allocate(text.size(), 1));
    std::memcpy(at, text.data(), text.size());
    return {at, text.size()};
  }

  // Runs destructors (newest first), frees extra blocks, keeps the first.
  void reset();
  // Bytes handed out since the last reset (for tests).
  size_t used() const { return used_; }
  size_t blockCount() const { return blocks_.size(); }

 private:
  struct Cleanup {
    void (*fn)(void*);
    void* object;
    Cleanup* next;
  };
  struct Block {
    std::unique_ptr<char[]> data;
    size_t size;
  };

  std::vector<Block> blocks_;
  size_t offset_ = 0;  // into blocks_.back()
  size_t used_ = 0;
  Cleanup* cleanups_ = nullptr;
};

}  // namespace gw::filter
