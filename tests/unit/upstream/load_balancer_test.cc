#define CATCH_CONFIG_MAIN
#include "gateway/upstream/load_balancer.h"

#include <catch2/catch.hpp>
#include <memory>
#include <vector>

namespace gw::upstream {
namespace {

std::vector<size_t> picks(LoadBalancer& lb, size_t endpoints, int n) {
  std::vector<size_t> out;
  for (int i = 0; i < n; ++i) out.push_back(lb.pick(PickContext{endpoints}));
  return out;
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

TEST_CASE("separate balancers keep separate cursors") {
  RoundRobin a;
  RoundRobin b;
  CHECK(a.pick(PickContext{3}) == 0);
  CHECK(a.pick(PickContext{3}) == 1);
  CHECK(b.pick(PickContext{3}) == 0);
  CHECK(a.pick(PickContext{3}) == 2);
}

TEST_CASE("makeLoadBalancer knows round_robin and nothing else") {
  std::unique_ptr<LoadBalancer> rr = makeLoadBalancer("round_robin");
  REQUIRE(rr != nullptr);
  CHECK(picks(*rr, 2, 3) == std::vector<size_t>{0, 1, 0});
  CHECK(makeLoadBalancer("") == nullptr);
  CHECK(makeLoadBalancer("random") == nullptr);
  CHECK(makeLoadBalancer("least_request") == nullptr);
  CHECK(makeLoadBalancer("Round_Robin") == nullptr);
  CHECK(makeLoadBalancer("round_robin ") == nullptr);
}

}  // namespace
}  // namespace gw::upstream
