#pragma once
// The load-balancer seam: given a pool's endpoints (already filtered for health by the
// caller, once health exists), pick one. One instance per pool per worker, so policies
// may keep cursors without locks.
//
// Contract: pick() runs on the worker's loop, never re-enters, and returns an index in
// [0, context.endpoint_count); endpoint_count is never 0.

#include <cstddef>
#include <memory>
#include <string_view>

namespace gw::upstream {

struct PickContext {
  size_t endpoint_count = 0;
};

class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;
  virtual size_t pick(const PickContext& context) = 0;
};

// Cycles through the endpoints in order.
class RoundRobin final : public LoadBalancer {
 public:
  size_t pick(const PickContext& context) override {
    size_t i = next_ % context.endpoint_count;
    next_ = i + 1;
    return i;
  }

 private:
  size_t next_ = 0;
};

// The policy named in the config ("round_robin"); nullptr for an unknown name (the
// config loader has already refused those).
std::unique_ptr<LoadBalancer> makeLoadBalancer(std::string_view policy);

}  // namespace gw::upstream
