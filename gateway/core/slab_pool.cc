#include "gateway/core/slab_pool.h"

#include <sys/mman.h>

#include <cassert>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define GW_POISON(addr, size) ASAN_POISON_MEMORY_REGION(addr, size)
#define GW_UNPOISON(addr, size) ASAN_UNPOISON_MEMORY_REGION(addr, size)
#else
#define GW_POISON(addr, size) ((void)(addr), (void)(size))
#define GW_UNPOISON(addr, size) ((void)(addr), (void)(size))
#endif

namespace gw {

struct SlabPool::Slab {
  SlabPool* pool;
  Slab* prev;  // in the pool's available_ list
  Slab* next;
  void* free;      // released slots, linked through their first word
  uint32_t used;   // live objects
  uint32_t fresh;  // slots from this index on were never handed out
};

namespace {
size_t roundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }
}  // namespace

SlabPool::SlabPool(size_t object_size, size_t alignment)
    : object_size_(object_size),
      slot_size_(roundUp(object_size < sizeof(void*) ? sizeof(void*) : object_size,
                         alignment < alignof(void*) ? alignof(void*) : alignment)),
      first_offset_(roundUp(sizeof(Slab), alignment < alignof(Slab) ? alignof(Slab) : alignment)),
      capacity_((kSlabBytes - first_offset_) / slot_size_) {
  assert((alignment & (alignment - 1)) == 0 && alignment <= 4096);
  assert(capacity_ >= 1);
}

SlabPool::~SlabPool() {
  // Full slabs are in no list: an object still live here would be leaked with its slab.
  assert(live_ == 0);
  while (available_ != nullptr) {
    Slab* slab = available_;
    makeUnavailable(slab);
    unmapSlab(slab);
  }
  if (spare_ != nullptr) unmapSlab(spare_);
}

char* SlabPool::slot(Slab* slab, size_t index) const {
  return reinterpret_cast<char*>(slab) + first_offset_ + index * slot_size_;
}

SlabPool::Slab* SlabPool::mapSlab() {
  // Twice the size, then the unaligned ends go back: an aligned slab of kSlabBytes.
  void* raw =
      mmap(nullptr, 2 * kSlabBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  uintptr_t aligned = roundUp(start, kSlabBytes);
  if (aligned > start) munmap(raw, aligned - start);
  if (size_t tail = start + 2 * kSlabBytes - (aligned + kSlabBytes); tail > 0) {
    munmap(reinterpret_cast<void*>(aligned + kSlabBytes), tail);
  }
  auto* slab = reinterpret_cast<Slab*>(aligned);
  *slab = Slab{this, nullptr, nullptr, nullptr, 0, 0};
  GW_POISON(slot(slab, 0), capacity_ * slot_size_);
  ++slabs_;
  return slab;
}

void SlabPool::unmapSlab(Slab* slab) {
  GW_UNPOISON(slot(slab, 0), capacity_ * slot_size_);  // ASan keeps shadow per address
  munmap(slab, kSlabBytes);
  --slabs_;
}

void SlabPool::makeAvailable(Slab* slab) {
  slab->prev = nullptr;
  slab->next = available_;
  if (available_ != nullptr) available_->prev = slab;
  available_ = slab;
}

void SlabPool::makeUnavailable(Slab* slab) {
  if (slab->prev != nullptr) {
    slab->prev->next = slab->next;
  } else {
    available_ = slab->next;
  }
  if (slab->next != nullptr) slab->next->prev = slab->prev;
  slab->prev = slab->next = nullptr;
}

void* SlabPool::allocate() {
  Slab* slab = available_;
  if (slab == nullptr) {
    slab = spare_ != nullptr ? spare_ : mapSlab();
    if (slab == nullptr) return nullptr;
    spare_ = nullptr;
    makeAvailable(slab);
  }
  char* object;
  if (slab->free != nullptr) {
    object = static_cast<char*>(slab->free);
    GW_UNPOISON(object, slot_size_);
    slab->free = *reinterpret_cast<void**>(object);
  } else {
    object = slot(slab, slab->fresh++);
    GW_UNPOISON(object, slot_size_);
  }
  if (++slab->used == capacity_) makeUnavailable(slab);
  ++live_;
  return object;
}

void* SlabPool::allocateOrThrow(size_t size) {
  void* slot = size <= object_size_ ? allocate() : nullptr;
  if (slot == nullptr) throw std::bad_alloc();
  return slot;
}

void SlabPool::release(void* object) {
  if (object == nullptr) return;
  auto* slab = reinterpret_cast<Slab*>(reinterpret_cast<uintptr_t>(object) & ~(kSlabBytes - 1));
  SlabPool* pool = slab->pool;
  if (slab->used == pool->capacity_) pool->makeAvailable(slab);
  *reinterpret_cast<void**>(object) = slab->free;
  slab->free = object;
  GW_POISON(object, pool->slot_size_);
  --pool->live_;
  if (--slab->used > 0) return;
  pool->makeUnavailable(slab);
  if (pool->spare_ == nullptr) {
    pool->spare_ = slab;
  } else {
    pool->unmapSlab(slab);
  }
}

}  // namespace gw
