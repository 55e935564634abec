#include "gateway/upstream/load_balancer.h"

namespace gw::upstream {

std::unique_ptr<LoadBalancer> makeLoadBalancer(std::string_view policy) {
  if (policy == "round_robin") return std::make_unique<RoundRobin>();
  return nullptr;
}

}  // namespace gw::upstream
