#pragma once
// A loop-confined allocator for objects of one size that live long and often idle
// (client sessions, pooled upstream connections), in 64 KiB slabs of their own taken
// from the system with mmap.
//
// Why not malloc: a long-lived object allocated during a burst, between short-lived ones
// (a request's exchange, parser, buffers), pins the heap pages they leave behind: with
// 10,000 idle keep-alive connections, tens of bytes of holes per connection, on top of
// malloc's 8-byte chunk header. Here slots of one size reuse each other's space
// and nothing else lands between them; a slab goes back to the system when its last
// object is released (one empty slab is kept, so churn at a boundary does not map and
// unmap). Slots never handed out are never touched, so they cost no resident memory.
//
// Slabs are aligned to their size: release() finds a slot's slab, and so its pool, from
// the address alone, and a class's operator delete needs no context.
//
// Under AddressSanitizer, free slots are poisoned: a use after release is reported.

#include <cstddef>
#include <cstdint>

namespace gw {

class SlabPool {
 public:
  static constexpr size_t kSlabBytes = 64 * 1024;

  // `object_size` up to a few KiB; `alignment` a power of two up to 4096.
  SlabPool(size_t object_size, size_t alignment);
  // Every object must have been released: the slabs are unmapped.
  ~SlabPool();
  SlabPool(const SlabPool&) = delete;
  SlabPool& operator=(const SlabPool&) = delete;

  // An uninitialised slot of object_size bytes; nullptr when the system has no memory.
  void* allocate();
  // For a class's operator new: a slot for `size` bytes (at most object_size), else
  // std::bad_alloc, as from ::operator new.
  void* allocateOrThrow(size_t size);
  // Gives back a slot from allocate() of any pool (the pool's loop thread only).
  static void release(void* object);

  size_t live() const { return live_; }
  size_t slabs() const { return slabs_; }  // mapped, the kept empty one included
  size_t slotsPerSlab() const { return capacity_; }

 private:
  struct Slab;
  Slab* mapSlab();
  void unmapSlab(Slab* slab);
  void makeAvailable(Slab* slab);  // it has a free slot: allocate() may use it
  void makeUnavailable(Slab* slab);
  char* slot(Slab* slab, size_t index) const;

  size_t object_size_;
  size_t slot_size_;
  size_t first_offset_;  // of slot 0 from the slab's start, after its header
  size_t capacity_;
  Slab* available_ = nullptr;  // slabs with a free slot and a live object
  Slab* spare_ = nullptr;      // one empty slab, kept
  size_t live_ = 0;
  size_t slabs_ = 0;
};

// A base for classes whose objects live in a SlabPool: `new (pool) T(...)`, then a plain
// `delete` gives the slot back. Empty: it adds nothing to the object. Out of memory
// throws std::bad_alloc, as ::operator new does.
struct SlabAllocated {
  static void* operator new(size_t size, SlabPool& slabs) { return slabs.allocateOrThrow(size); }
  static void operator delete(void* object) { SlabPool::release(object); }
  static void operator delete(void* object, SlabPool&) { SlabPool::release(object); }
};

}  // namespace gw
