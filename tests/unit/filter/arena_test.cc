#define CATCH_CONFIG_MAIN
#include "gateway/filter/arena.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

using gw::filter::Arena;

namespace {
struct Counted {
  int* destroyed;
  explicit Counted(int* d) : destroyed(d) {}
  ~Counted() { ++*destroyed; }
};
}  // namespace

TEST_CASE("allocations are aligned, copies survive, destructors run at reset") {
  Arena arena;
  int destroyed = 0;
  for (int i = 0; i < 100; ++i) arena.make<Counted>(&destroyed);
  void* p = arena.allocate(3, 1);
  void* q = arena.allocate(8, 8);
  CHECK(reinterpret_cast<uintptr_t>(q) % 8 == 0);
  CHECK(p != q);
  std::string_view copy = arena.copy("hello");
  CHECK(copy == "hello");
  arena.reset();
  CHECK(destroyed == 100);
  CHECK(arena.used() == 0);
}

TEST_CASE("a warm arena keeps one block; big allocations do not stay") {
  Arena arena;
  arena.allocate(100);
  CHECK(arena.blockCount() == 1);
  arena.allocate(3 * Arena::kBlockSize);  // its own block
  arena.allocate(Arena::kBlockSize - 10);
  CHECK(arena.blockCount() >= 2);
  arena.reset();
  CHECK(arena.blockCount() == 1);
  arena.allocate(100);
  CHECK(arena.blockCount() == 1);
  // A first allocation bigger than a block does not become the kept block.
  Arena big;
  big.allocate(2 * Arena::kBlockSize);
  big.reset();
  CHECK(big.blockCount() == 0);
}
