#pragma once
// A worker's upstream runtime: one EndpointRuntime per endpoint key and one PoolRuntime
// (members + load balancer + breaker/retry counters) per service pool. Rebuilt against
// each new snapshot by apply(), keeping the state of endpoints and pools whose identity
// did not change. Loop-confined.
//
// Lifetimes: EndpointRuntimes and PoolRuntimes are never destroyed before the registry,
// so an exchange pinned to an old snapshot may keep raw pointers to them.

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "gateway/config/snapshot.h"
#include "gateway/core/loop_context.h"
#include "gateway/upstream/balancing_stats.h"
#include "gateway/upstream/connection.h"
#include "gateway/upstream/health_board.h"
#include "gateway/upstream/load_balancer.h"

namespace gw::upstream {

// What the exchange knows about the request when it asks for an endpoint.
struct PickRequest {
  uint64_t hash = 0;
  bool has_hash = false;
  uint64_t tried = 0;  // bit i: member i was tried already (retries prefer others)
  int sticky = -1;     // member named by the request's sticky cookie; -1: none
};

class PoolRuntime {
 public:
  struct Member {
    EndpointRuntime* endpoint = nullptr;
    uint32_t weight = 1;
    std::shared_ptr<EndpointHealth> health;  // null: no active checks
    uint64_t health_generation = 0;          // last seen, to restart slow start on a heal
    std::string sticky_id;                   // its opaque id in sticky cookies (sticky.h)
  };

  PoolRuntime(LoopContext& ctx, std::string name) : ctx_(ctx), name_(std::move(name)) {}

  const std::string& name() const { return name_; }  // "service/pool"
  const std::vector<Member>& members() const { return members_; }
  const config::Balancing& settings() const { return settings_; }

  // Index into members() of the endpoint to use, or -1 when none is eligible (no healthy
  // endpoint and panic mode off). Ejected endpoints whose time is up return here. The
  // request's sticky member wins while it is healthy, not ejected and not yet tried.
  int pick(const PickRequest& request);
  // Sticky cookies (settings().sticky.enabled): the member whose id is `id`, or -1.
  int stickyMember(std::string_view id) const;
  // "; Path=/; ..." for Set-Cookie after "NAME=ID".
  const std::string& stickyAttributes() const { return sticky_attributes_; }
  // nullptr when the pool has no eligible endpoint (tests and simple callers).
  EndpointRuntime* pick() {
    int i = pick(PickRequest{});
    return i < 0 ? nullptr : members_[static_cast<size_t>(i)].endpoint;
  }

  // Passive outlier detection: the outcome of one try on `endpoint`. A failure is a 5xx,
  // a connect failure, a reset or a timeout. Returns true when this ejected it.
  bool reportFailure(EndpointRuntime& endpoint);
  void reportSuccess(EndpointRuntime& endpoint) { endpoint.outlier.consecutive_errors = 0; }
  // Latency outlier detection: the time from sending the request to the response head.
  // Every `latency_min_requests` x members samples, endpoints whose p99 exceeds the
  // median endpoint p99 by `latency_factor` are ejected; then a new window starts.
  // Returns true when this ejected an endpoint.
  bool reportLatency(EndpointRuntime& endpoint, uint64_t latency_ms);
  // The upper bound (ms) of the bucket holding the 99th percentile; 0 with no samples.
  static uint64_t p99(const EndpointRuntime& endpoint);
  // Forgets old ejections (Envoy's decay): an endpoint back from ejection for a whole
  // `base_ms` loses one from its ejection count, so a flap long ago does not lengthen
  // today's ejection. Lazy: applied when the endpoint is looked at, no timer.
  static void decayEjections(EndpointRuntime::Outlier& state, uint64_t now, uint64_t base_ms);

  // Circuit breakers (per worker). Each returns false, counted, when over its limit.
  bool admitRequest();
  bool admitConnection();
  // The retry budget: retries in flight stay under budget_percent of requests in flight
  // (but min_retry_concurrency are always allowed).
  bool admitRetry();

  uint32_t active_requests = 0;  // exchanges of this pool in flight
  uint32_t active_retries = 0;   // of those, how many are on a retry
  uint32_t pending = 0;          // exchanges waiting for a connection to open

 private:
  friend class UpstreamRegistry;
  void configure(const config::Service& service, std::vector<Member> members,
                 BalancingStats* stats);
  bool eligibleNow(Member& m, uint64_t now);
  // Ejects `endpoint` if max_ejection_percent allows; `why` goes into the log.
  bool eject(EndpointRuntime& endpoint, uint64_t now, const char* why);
  uint32_t effectiveWeight(const Member& m, uint64_t now) const;

  LoopContext& ctx_;
  std::string name_;
  std::string policy_;
  config::Balancing settings_;
  std::vector<Member> members_;
  std::unique_ptr<LoadBalancer> balancer_;
  std::string sticky_attributes_;
  BalancingStats* stats_ = nullptr;
  // Per-pick scratch, sized with the members (no allocation per request).
  std::vector<uint8_t> eligible_;
  std::vector<uint32_t> weights_;
  std::vector<uint32_t> active_;
  uint64_t latency_window_samples_ = 0;
  // The limit that overflowed, until the same check admits again (for logging).
  const char* requests_breaker_ = nullptr;
  const char* connections_breaker_ = nullptr;
  void breakerState(const char*& open, const char* limit);
};

class UpstreamRegistry {
 public:
  explicit UpstreamRegistry(LoopContext& ctx)
      : connection_slabs_(sizeof(UpstreamConnection), alignof(UpstreamConnection)), ctx_(ctx) {}
  ~UpstreamRegistry();

  // Where decision counters go (the worker's stats); may be left null in tests.
  void setStats(BalancingStats* stats) { stats_ = stats; }
  BalancingStats* stats() { return stats_; }

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
  SlabPool connection_slabs_;  // first: freed after every endpoint and connection
  LoopContext& ctx_;
  BalancingStats* stats_ = nullptr;
  std::unordered_map<std::string, std::unique_ptr<EndpointRuntime>> endpoints_;
  // "svc/pool"; kept after a reload drops the pool (exchanges may still point at it).
  std::unordered_map<std::string, std::unique_ptr<PoolRuntime>> pools_by_name_;
  std::unordered_map<const config::Service*, PoolRuntime*> active_by_service_;
  struct WeightedPool {
    PoolRuntime* pool;
    uint32_t upto;  // cumulative weight
    uint16_t stats_slot;
  };
  std::unordered_map<const config::Service*, std::vector<WeightedPool>> split_by_service_;
};

}  // namespace gw::upstream
