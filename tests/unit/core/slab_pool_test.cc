#define CATCH_CONFIG_MAIN
#include "gateway/core/slab_pool.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <new>
#include <set>
#include <vector>

namespace {

using gw::SlabPool;

// Slots of 456 bytes, like a DownstreamSession.
constexpr size_t kSize = 456;

std::vector<void*> fill(SlabPool& pool, size_t n) {
  std::vector<void*> out;
  for (size_t i = 0; i < n; ++i) {
    void* p = pool.allocate();
    REQUIRE(p != nullptr);
    out.push_back(p);
  }
  return out;
}

uintptr_t slabOf(void* p) {
  return reinterpret_cast<uintptr_t>(p) & ~(uintptr_t{SlabPool::kSlabBytes} - 1);
}

}  // namespace

TEST_CASE("slots are distinct, aligned, writable and packed into as few slabs as fit") {
  SlabPool pool(kSize, 8);
  size_t per_slab = pool.slotsPerSlab();
  CHECK(per_slab == (SlabPool::kSlabBytes - 64) / kSize);  // a header of at most 64 bytes
  std::vector<void*> slots = fill(pool, per_slab + 1);
  CHECK(pool.live() == per_slab + 1);
  CHECK(pool.slabs() == 2);
  std::set<uintptr_t> slabs;
  std::set<void*> distinct(slots.begin(), slots.end());
  CHECK(distinct.size() == slots.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    CHECK(reinterpret_cast<uintptr_t>(slots[i]) % 8 == 0);
    std::memset(slots[i], static_cast<int>(i), kSize);  // ASan: the whole slot is usable
    slabs.insert(slabOf(slots[i]));
  }
  CHECK(slabs.size() == 2);
  // Every byte still holds what was written to it: slots do not overlap.
  for (size_t i = 0; i < slots.size(); ++i) {
    auto* bytes = static_cast<unsigned char*>(slots[i]);
    CHECK(bytes[0] == static_cast<unsigned char>(i));
    CHECK(bytes[kSize - 1] == static_cast<unsigned char>(i));
  }
  for (void* p : slots) SlabPool::release(p);
  CHECK(pool.live() == 0);
}

TEST_CASE("a released slot is the next one given, also from a slab that was full") {
  SlabPool pool(kSize, 8);
  std::vector<void*> slots = fill(pool, 2 * pool.slotsPerSlab());  // two full slabs
  REQUIRE(pool.slabs() == 2);
  void* from_first = slots[3];
  SlabPool::release(from_first);
  CHECK(pool.allocate() == from_first);
  CHECK(pool.slabs() == 2);  // no third slab for it
  for (void* p : slots) SlabPool::release(p);
}

TEST_CASE("an emptied slab is kept as the one spare, further ones are unmapped") {
  SlabPool pool(kSize, 8);
  size_t per_slab = pool.slotsPerSlab();
  std::vector<void*> slots = fill(pool, 3 * per_slab);
  REQUIRE(pool.slabs() == 3);
  for (size_t i = 0; i < per_slab; ++i) SlabPool::release(slots[i]);
  CHECK(pool.slabs() == 3);  // the first slab is empty, kept
  for (size_t i = per_slab; i < 2 * per_slab; ++i) SlabPool::release(slots[i]);
  CHECK(pool.slabs() == 2);  // the second one emptied too: a spare is already kept
  // The spare serves the next allocation when no slab with live objects has room.
  void* again = pool.allocate();
  CHECK(slabOf(again) == slabOf(slots[0]));
  CHECK(pool.slabs() == 2);
  SlabPool::release(again);
  for (size_t i = 2 * per_slab; i < slots.size(); ++i) SlabPool::release(slots[i]);
  CHECK(pool.slabs() == 1);
  CHECK(pool.live() == 0);
}

TEST_CASE("release finds the pool of a slot from its address") {
  SlabPool small(64, 8);
  SlabPool large(kSize, 16);
  std::vector<void*> a = fill(small, 10);
  std::vector<void*> b = fill(large, 10);
  for (void* p : b) CHECK(reinterpret_cast<uintptr_t>(p) % 16 == 0);
  for (size_t i = 0; i < 10; ++i) {
    SlabPool::release(b[i]);
    SlabPool::release(a[i]);
    CHECK(small.live() == 9 - i);
    CHECK(large.live() == 9 - i);
  }
  SlabPool::release(nullptr);  // like delete of a null pointer
}

TEST_CASE("many churn cycles map no more slabs than the peak needs") {
  SlabPool pool(kSize, 8);
  size_t peak = pool.slotsPerSlab() * 2 + 7;  // three slabs at the peak
  for (int cycle = 0; cycle < 50; ++cycle) {
    std::vector<void*> slots = fill(pool, peak);
    CHECK(pool.slabs() == 3);
    // Release every other one, then the rest: free lists of partly used slabs are reused.
    for (size_t i = 0; i < slots.size(); i += 2) SlabPool::release(slots[i]);
    std::vector<void*> refill = fill(pool, (slots.size() + 1) / 2);
    CHECK(pool.slabs() == 3);
    for (size_t i = 1; i < slots.size(); i += 2) SlabPool::release(slots[i]);
    for (void* p : refill) SlabPool::release(p);
    CHECK(pool.slabs() == 1);
  }
}

TEST_CASE("allocateOrThrow serves a class's operator new and refuses a larger object") {
  SlabPool pool(kSize, 8);
  void* p = pool.allocateOrThrow(kSize);
  CHECK(pool.live() == 1);
  CHECK_THROWS_AS(pool.allocateOrThrow(kSize + 1), std::bad_alloc);
  CHECK(pool.live() == 1);
  SlabPool::release(p);
}
