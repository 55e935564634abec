#include "gateway/filter/arena.h"

namespace gw::filter {

void* Arena::allocate(size_t size, size_t align) {
  if (size == 0) size = 1;
  if (!blocks_.empty()) {
    Block& block = blocks_.back();
    auto base = reinterpret_cast<uintptr_t>(block.data.get());
    uintptr_t at = (base + offset_ + align - 1) & ~(uintptr_t(align) - 1);
    if (at + size <= base + block.size) {
      offset_ = at + size - base;
      used_ += size;
      return reinterpret_cast<void*>(at);
    }
  }
  // new[] of char is aligned for max_align_t; larger alignments are not used here.
  size_t want = size + align > kBlockSize ? size + align : kBlockSize;
  blocks_.push_back(Block{std::make_unique<char[]>(want), want});
  offset_ = 0;
  return allocate(size, align);
}

void Arena::reset() {
  for (Cleanup* c = cleanups_; c != nullptr; c = c->next) c->fn(c->object);
  cleanups_ = nullptr;
  if (blocks_.size() > 1) {
    // Keep the first block only if it is the standard size; an oversized first block
    // would make one huge request's memory permanent.
    blocks_.resize(1);
  }
  if (!blocks_.empty() && blocks_.front().size != kBlockSize) blocks_.clear();
  offset_ = 0;
  used_ = 0;
}

}  // namespace gw::filter
