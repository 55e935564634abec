#pragma once
// A worker's upstream runtime: one EndpointRuntime per endpoint key and one PoolRuntime
// (endpoints + load balancer) per service pool of the current snapshot. Rebuilt against
// each new snapshot by apply(), keeping the state of endpoints and pools whose identity
// did not change. Loop-confined.

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "gateway/config/snapshot.h"
#include "gateway/core/loop_context.h"
#include "gateway/upstream/connection.h"
#include "gateway/upstream/load_balancer.h"

namespace gw::upstream {

class PoolRuntime {
 public:
  std::vector<EndpointRuntime*> endpoints;
  std::unique_ptr<LoadBalancer> balancer;

  // nullptr when the pool has no endpoint.
  EndpointRuntime* pick() {
    if (endpoints.empty()) return nullptr;
    PickContext context;
    context.endpoint_count = endpoints.size();
    return endpoints[balancer->pick(context)];
  }
};

class UpstreamRegistry {
 public:
  explicit UpstreamRegistry(LoopContext& ctx) : ctx_(ctx) {}
  ~UpstreamRegistry();

  void apply(const config::Snapshot& snapshot);
  // The runtime of `service`'s active pool in the applied snapshot, or of a pool of the
  // same identity (service/pool names) for an exchange pinned to an older snapshot.
  PoolRuntime* activePool(const config::Service& service);
  // The pool for a new request: the active one, or one drawn by the service's split
  // weights (`random` is any pseudo-random number). Sets `stats_slot` to the pool's.
  PoolRuntime* choosePool(const config::Service& service, uint64_t random, uint16_t& stats_slot);
  void closeIdle();
  // Shutdown: closes idle connections and keeps none from now on.
  void drain();

  // Runtime state by endpoint key, for stats.
  const std::unordered_map<std::string, std::unique_ptr<EndpointRuntime>>& endpoints() const {
    return endpoints_;
  }

 private:
  LoopContext& ctx_;
  std::unordered_map<std::string, std::unique_ptr<EndpointRuntime>> endpoints_;
  std::unordered_map<std::string, std::unique_ptr<PoolRuntime>> pools_by_name_;  // "svc/pool"
  std::unordered_map<const config::Service*, PoolRuntime*> active_by_service_;
  struct WeightedPool {
    PoolRuntime* pool;
    uint32_t upto;  // cumulative weight
    uint16_t stats_slot;
  };
  std::unordered_map<const config::Service*, std::vector<WeightedPool>> split_by_service_;
};

}  // namespace gw::upstream
