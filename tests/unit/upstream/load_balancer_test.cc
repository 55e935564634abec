#define CATCH_CONFIG_MAIN
#include "gateway/upstream/load_balancer.h"

#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace gw::upstream {
namespace {

std::vector<size_t> picks(LoadBalancer& lb, size_t endpoints, int n) {
  std::vector<size_t> out;
  for (int i = 0; i < n; ++i) out.push_back(lb.pick(PickContext{endpoints}));
  return out;
}

std::vector<std::string> keysFor(size_t n) {
  std::vector<std::string> keys;
  for (size_t i = 0; i < n; ++i) keys.push_back("10.0.0." + std::to_string(i + 1) + ":8080");
  return keys;
}

TEST_CASE("RoundRobin cycles through the endpoints in order") {
  RoundRobin rr;
  CHECK(picks(rr, 3, 7) == std::vector<size_t>{0, 1, 2, 0, 1, 2, 0});
}

TEST_CASE("RoundRobin with one endpoint always picks it") {
  RoundRobin rr;
  CHECK(picks(rr, 1, 4) == std::vector<size_t>{0, 0, 0, 0});
}

TEST_CASE("RoundRobin stays in range when the endpoint count changes") {
  RoundRobin rr;
  CHECK(picks(rr, 4, 3) == std::vector<size_t>{0, 1, 2});
  // Shrunk from 4 to 2 with the cursor at 3: still a valid index, then cycling on.
  std::vector<size_t> after = picks(rr, 2, 4);
  for (size_t i : after) CHECK(i < 2);
  CHECK(after[1] != after[0]);
  CHECK(after[2] == after[0]);
  // Grown again: every endpoint is reached within one cycle.
  std::vector<size_t> grown = picks(rr, 5, 5);
  std::vector<bool> seen(5, false);
  for (size_t i : grown) {
    REQUIRE(i < 5);
    seen[i] = true;
  }
  CHECK(seen == std::vector<bool>(5, true));
}

TEST_CASE("RoundRobin skips ineligible endpoints") {
  RoundRobin rr;
  uint8_t eligible[4] = {1, 0, 1, 1};
  PickContext c{4, eligible};
  std::vector<size_t> out;
  for (int i = 0; i < 6; ++i) out.push_back(rr.pick(c));
  CHECK(out == std::vector<size_t>{0, 2, 3, 0, 2, 3});
}

TEST_CASE("separate balancers keep separate cursors") {
  RoundRobin a;
  RoundRobin b;
  CHECK(a.pick(PickContext{3}) == 0);
  CHECK(a.pick(PickContext{3}) == 1);
  CHECK(b.pick(PickContext{3}) == 0);
  CHECK(a.pick(PickContext{3}) == 2);
}

TEST_CASE("WeightedRoundRobin interleaves weights 5:1:1 smoothly") {
  WeightedRoundRobin wrr;
  wrr.setEndpoints(keysFor(3), {5, 1, 1});
  uint32_t weights[3] = {5, 1, 1};
  PickContext c{3, nullptr, weights};
  std::vector<size_t> out;
  for (int i = 0; i < 14; ++i) out.push_back(wrr.pick(c));
  // nginx's published sequence for 5:1:1, twice: never five a's in a row.
  CHECK(out == std::vector<size_t>{0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0});
}

TEST_CASE("WeightedRoundRobin gives each endpoint its share and skips ineligible ones") {
  WeightedRoundRobin wrr;
  uint32_t weights[3] = {3, 1, 2};
  uint8_t eligible[3] = {1, 1, 0};
  PickContext c{3, eligible, weights};
  std::map<size_t, int> count;
  for (int i = 0; i < 400; ++i) count[wrr.pick(c)]++;
  CHECK(count[0] == 300);
  CHECK(count[1] == 100);
  CHECK(count[2] == 0);
}

TEST_CASE("LeastRequest prefers the endpoint with fewer requests in flight") {
  LeastRequest lr(42);
  uint32_t active[2] = {10, 0};
  PickContext c{2, nullptr, nullptr, active};
  std::map<size_t, int> count;
  for (int i = 0; i < 1000; ++i) count[lr.pick(c)]++;
  // Endpoint 0 wins only when both draws hit it: about a quarter of the time.
  CHECK(count[1] > 650);
  CHECK(count[0] > 150);
  // Equal load: both are used.
  uint32_t even[2] = {3, 3};
  PickContext e{2, nullptr, nullptr, even};
  std::map<size_t, int> split;
  for (int i = 0; i < 1000; ++i) split[lr.pick(e)]++;
  CHECK(split[0] > 400);
  CHECK(split[1] > 400);
}

TEST_CASE("LeastRequest never picks an ineligible endpoint") {
  LeastRequest lr(7);
  uint8_t eligible[3] = {0, 1, 0};
  PickContext c{3, eligible};
  for (int i = 0; i < 100; ++i) CHECK(lr.pick(c) == 1);
}

TEST_CASE("RandomPick follows weights") {
  RandomPick r(1);
  uint32_t weights[2] = {3, 1};
  PickContext c{2, nullptr, weights};
  int first = 0;
  for (int i = 0; i < 40000; ++i) first += r.pick(c) == 0 ? 1 : 0;
  CHECK(first > 29000);  // 75% ± 2.5%
  CHECK(first < 31000);
}

// Where each of `n` keys lands on a ring of `keys` endpoints.
std::vector<std::string> placement(const std::vector<std::string>& keys, int n,
                                   const uint8_t* eligible = nullptr) {
  RingHash ring;
  ring.setEndpoints(keys, std::vector<uint32_t>(keys.size(), 1));
  std::vector<std::string> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) {
    PickContext c{keys.size(), eligible};
    c.hash = hashKey("user-" + std::to_string(i));
    c.has_hash = true;
    out.push_back(keys[ring.pick(c)]);
  }
  return out;
}

TEST_CASE("RingHash: removing one of ten endpoints moves few keys; adding it back restores") {
  constexpr int kKeys = 100'000;
  std::vector<std::string> ten = keysFor(10);
  std::vector<std::string> before = placement(ten, kKeys);

  std::vector<std::string> nine = ten;
  nine.erase(nine.begin() + 4);
  std::vector<std::string> after = placement(nine, kKeys);
  int moved = 0;
  int moved_not_from_removed = 0;
  for (int i = 0; i < kKeys; ++i) {
    if (before[i] != after[i]) {
      moved++;
      if (before[i] != ten[4]) moved_not_from_removed++;
    }
  }
  CHECK(moved <= kKeys * 15 / 100);
  CHECK(moved > 0);
  CHECK(moved_not_from_removed == 0);  // only the removed endpoint's keys move

  CHECK(placement(ten, kKeys) == before);

  // Every endpoint gets a fair share (within ±40% of 1/10).
  std::map<std::string, int> share;
  for (const auto& k : before) share[k]++;
  REQUIRE(share.size() == 10);
  for (const auto& [k, count] : share) {
    CHECK(count > kKeys / 10 * 6 / 10);
    CHECK(count < kKeys / 10 * 14 / 10);
  }
}

TEST_CASE("RingHash: an ineligible endpoint's keys go elsewhere and come back") {
  constexpr int kKeys = 10'000;
  std::vector<std::string> keys = keysFor(5);
  std::vector<std::string> before = placement(keys, kKeys);
  uint8_t eligible[5] = {1, 1, 0, 1, 1};
  std::vector<std::string> during = placement(keys, kKeys, eligible);
  for (int i = 0; i < kKeys; ++i) {
    CHECK(during[i] != keys[2]);
    if (before[i] != keys[2]) CHECK(during[i] == before[i]);
  }
}

TEST_CASE("RingHash: the same key always lands on the same endpoint") {
  RingHash ring;
  ring.setEndpoints(keysFor(4), {1, 1, 1, 1});
  PickContext c{4};
  c.hash = hashKey("session-abc");
  c.has_hash = true;
  size_t first = ring.pick(c);
  for (int i = 0; i < 50; ++i) CHECK(ring.pick(c) == first);
}

TEST_CASE("makeLoadBalancer knows the documented policies and nothing else") {
  for (std::string_view name : loadBalancerNames()) CHECK(makeLoadBalancer(name) != nullptr);
  std::unique_ptr<LoadBalancer> rr = makeLoadBalancer("round_robin");
  REQUIRE(rr != nullptr);
  CHECK(picks(*rr, 2, 3) == std::vector<size_t>{0, 1, 0});
  CHECK(makeLoadBalancer("") == nullptr);
  CHECK(makeLoadBalancer("Round_Robin") == nullptr);
  CHECK(makeLoadBalancer("round_robin ") == nullptr);
  CHECK(makeLoadBalancer("maglev") == nullptr);
}

}  // namespace
}  // namespace gw::upstream
