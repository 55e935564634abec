#include "gateway/upstream/registry.h"

#include <unordered_set>

namespace gw::upstream {
namespace {

// Plain endpoints keep their key as written; a TLS pool's endpoint is a different peer
// for each TLS identity (name, CA, verification, client certificate).
std::string runtimeKey(const config::Endpoint& endpoint, const config::Pool& pool) {
  if (pool.tls == nullptr) return endpoint.key;
  const tls::ClientSettings& s = pool.tls->settings();
  return endpoint.key + " tls:" + s.server_name + "|" + s.ca_file + "|" +
         (s.verify ? "verify" : "no-verify") + "|" + s.cert_file;
}

}  // namespace

UpstreamRegistry::~UpstreamRegistry() = default;

void UpstreamRegistry::apply(const config::Snapshot& snapshot) {
  active_by_service_.clear();
  split_by_service_.clear();
  std::unordered_map<std::string, std::unique_ptr<PoolRuntime>> pools;
  for (const auto& [service_name, service] : snapshot.services) {
    for (const auto& [pool_name, pool] : service.pools) {
      std::string pool_key = service_name + "/" + pool_name;
      std::unique_ptr<PoolRuntime> runtime;
      auto old = pools_by_name_.find(pool_key);
      if (old != pools_by_name_.end()) runtime = std::move(old->second);
      if (runtime == nullptr) runtime = std::make_unique<PoolRuntime>();
      runtime->balancer = makeLoadBalancer(service.lb);
      if (runtime->balancer == nullptr) runtime->balancer = std::make_unique<RoundRobin>();
      runtime->endpoints.clear();
      for (const config::Endpoint& endpoint : pool.endpoints) {
        // A connection is reused only for the same peer: address and TLS identity.
        auto& slot = endpoints_[runtimeKey(endpoint, pool)];
        if (slot == nullptr) {
          slot = std::make_unique<EndpointRuntime>(ctx_, endpoint.key, endpoint.addresses.front());
        } else {
          slot->setAddress(endpoint.addresses.front());
        }
        slot->setTls(pool.tls, endpoint.host);
        slot->setPoolLimits(service.max_idle_connections, service.idle_connection_timeout_ms);
        runtime->endpoints.push_back(slot.get());
      }
      if (pool_name == service.active) active_by_service_[&service] = runtime.get();
      pools[pool_key] = std::move(runtime);
    }
  }
  pools_by_name_ = std::move(pools);
  for (const auto& [service_name, service] : snapshot.services) {
    uint32_t upto = 0;
    std::vector<WeightedPool> weighted;
    for (const config::PoolWeight& w : service.split) {
      auto it = pools_by_name_.find(service_name + "/" + w.pool);
      if (it == pools_by_name_.end() || w.weight == 0) continue;
      upto += w.weight;
      weighted.push_back({it->second.get(), upto, service.pools.at(w.pool).stats_slot});
    }
    if (!weighted.empty()) split_by_service_[&service] = std::move(weighted);
  }

  // Endpoints that no active pool uses any more (removed, or in a pool that was just
  // flipped away from) keep no idle connections: close those now, and close busy ones
  // when their exchange ends. In-flight requests finish where they started.
  std::unordered_set<const EndpointRuntime*> in_use;
  for (const auto& [service, runtime] : active_by_service_) {
    for (const EndpointRuntime* e : runtime->endpoints) in_use.insert(e);
  }
  for (const auto& [service, weighted] : split_by_service_) {
    for (const WeightedPool& w : weighted) {
      for (const EndpointRuntime* e : w.pool->endpoints) in_use.insert(e);
    }
  }
  for (auto& [key, endpoint] : endpoints_) {
    if (in_use.count(endpoint.get()) == 0) {
      endpoint->setPoolLimits(0, 0);
      endpoint->closeIdle();
    }
  }
}

PoolRuntime* UpstreamRegistry::activePool(const config::Service& service) {
  auto it = active_by_service_.find(&service);
  if (it != active_by_service_.end()) return it->second;
  auto by_name = pools_by_name_.find(service.name + "/" + service.active);
  return by_name == pools_by_name_.end() ? nullptr : by_name->second.get();
}

PoolRuntime* UpstreamRegistry::choosePool(const config::Service& service, uint64_t random,
                                          uint16_t& stats_slot) {
  if (!split_by_service_.empty()) {
    auto it = split_by_service_.find(&service);
    if (it != split_by_service_.end()) {
      const std::vector<WeightedPool>& weighted = it->second;
      uint32_t draw = static_cast<uint32_t>(random % weighted.back().upto);
      for (const WeightedPool& w : weighted) {
        if (draw < w.upto) {
          stats_slot = w.stats_slot;
          return w.pool;
        }
      }
    }
  }
  auto active = service.pools.find(service.active);
  stats_slot = active != service.pools.end() ? active->second.stats_slot : 0;
  return activePool(service);
}

void UpstreamRegistry::drain() {
  for (auto& [key, endpoint] : endpoints_) {
    endpoint->setPoolLimits(0, 0);
    endpoint->closeIdle();
  }
}

void UpstreamRegistry::closeIdle() {
  for (auto& [key, endpoint] : endpoints_) endpoint->closeIdle();
}

}  // namespace gw::upstream
