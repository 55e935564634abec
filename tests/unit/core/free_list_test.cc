#define CATCH_CONFIG_MAIN
#include "gateway/core/free_list.h"

#include <catch2/catch.hpp>

namespace gw {
namespace {

// Counts live objects, so the tests see what the pool frees.
struct Tracked {
  static inline int live = 0;
  Tracked() { ++live; }
  ~Tracked() { --live; }
};

TEST_CASE("free list: LIFO reuse, bounded size") {
  Tracked::live = 0;
  {
    FreeList<Tracked> pool(2);
    CHECK(pool.take() == nullptr);
    auto* a = new Tracked;
    auto* b = new Tracked;
    auto* c = new Tracked;
    CHECK(pool.give(a));
    CHECK(pool.give(b));
    CHECK_FALSE(pool.give(c));  // full: the caller keeps (and frees) it
    delete c;
    CHECK(pool.take() == b);
    CHECK(pool.take() == a);
    CHECK(pool.take() == nullptr);
    CHECK(pool.give(a));
    CHECK(pool.give(b));
  }
  CHECK(Tracked::live == 0);  // the pool frees what it holds
}

TEST_CASE("free list: trim halves what nobody took since the last trim") {
  Tracked::live = 0;
  FreeList<Tracked> pool(1024);
  for (int i = 0; i < 100; ++i) pool.give(new Tracked);
  // Before the first trim the low-water mark starts at 0: nothing counts as unused yet.
  CHECK(pool.trim() == 0);
  CHECK(pool.size() == 100);
  // A quiet period: all 100 stayed unused, half go; then half of the rest, and so on.
  CHECK(pool.trim() == 50);
  CHECK(pool.trim() == 25);
  CHECK(pool.trim() == 13);
  CHECK(pool.size() == 12);
  CHECK(Tracked::live == 12);
  // Under load the pool keeps what is used: 10 taken and given back in this period, so
  // only the 2 that were never taken count as unused.
  Tracked* taken[10];
  for (auto& t : taken) t = pool.take();
  for (auto* t : taken) pool.give(t);
  CHECK(pool.trim() == 1);
  CHECK(pool.size() == 11);
  // Drains to nothing when idle long enough.
  while (pool.trim() > 0) {
  }
  CHECK(pool.size() == 0);
  CHECK(Tracked::live == 0);
}

}  // namespace
}  // namespace gw
