#include "gateway/upstream/registry.h"

#include <algorithm>
#include <unordered_set>

#include "gateway/core/log.h"
#include "gateway/upstream/sticky.h"

namespace gw::upstream {
namespace {

// Plain endpoints keep their key as written; a TLS pool's endpoint is a different peer
// for each TLS identity (name, CA, verification, client certificate).
std::string runtimeKey(const config::Endpoint& endpoint, const config::Pool& pool) {
  if (pool.protocol != config::Pool::Protocol::Http1) {
    // HTTP/2 connections are shared by streams: never with an HTTP/1 pool's endpoint.
    std::string key = endpoint.key + " " + config::protocolName(pool.protocol) + ":" +
                      std::to_string(pool.max_streams_per_connection);
    if (pool.tls == nullptr) return key;
    const tls::ClientSettings& s = pool.tls->settings();
    return key + " tls:" + s.server_name + "|" + s.ca_file + "|" +
           (s.verify ? "verify" : "no-verify") + "|" + s.cert_file;
  }
  if (pool.tls == nullptr) return endpoint.key;
  const tls::ClientSettings& s = pool.tls->settings();
  return endpoint.key + " tls:" + s.server_name + "|" + s.ca_file + "|" +
         (s.verify ? "verify" : "no-verify") + "|" + s.cert_file;
}

}  // namespace

// ---------------------------------------------------------------- PoolRuntime

void PoolRuntime::configure(const config::Service& service, std::vector<Member> members,
                            BalancingStats* stats) {
  stats_ = stats;
  settings_ = service.balancing;
  // A new policy starts fresh; the same policy keeps its cursor across a reload.
  if (balancer_ == nullptr || policy_ != service.lb) {
    balancer_ = makeLoadBalancer(service.lb);
    if (balancer_ == nullptr) balancer_ = std::make_unique<RoundRobin>();
    policy_ = service.lb;
  }
  members_ = std::move(members);
  if (settings_.sticky.enabled) {
    for (Member& m : members_) m.sticky_id = stickyId(settings_.sticky.secret, m.endpoint->key());
    sticky_attributes_ = stickyCookieAttributes(settings_.sticky);
  }
  std::vector<std::string> keys;
  std::vector<uint32_t> weights;
  for (const Member& m : members_) {
    keys.push_back(m.endpoint->key());
    weights.push_back(m.weight);
  }
  balancer_->setEndpoints(keys, weights);
  eligible_.assign(members_.size(), 0);
  weights_.assign(members_.size(), 1);
  active_.assign(members_.size(), 0);
}

bool PoolRuntime::eligibleNow(Member& m, uint64_t now) {
  EndpointRuntime& e = *m.endpoint;
  if (e.outlier.ejected) {
    if (now < e.outlier.ejected_until_ms) return false;
    e.outlier.ejected = false;
    e.outlier.ramp_start_ms = now;
    e.outlier.decay_from_ms = e.outlier.ejected_until_ms;  // back since then
    if (stats_ != nullptr) stats_->outlier_returns.add();
    log::info("endpoint returned from ejection",
              {log::str("pool", name_), log::str("endpoint", e.key()),
               log::num("ejections", e.outlier.ejections)});
  }
  decayEjections(e.outlier, now, settings_.outlier.base_ejection_time_ms);
  if (m.health != nullptr) {
    uint64_t generation = m.health->generation.load(std::memory_order_relaxed);
    bool healthy = m.health->healthy.load(std::memory_order_relaxed);
    if (generation != m.health_generation) {
      m.health_generation = generation;
      if (healthy) e.outlier.ramp_start_ms = now;  // healed: ramp up again
    }
    if (!healthy) return false;
  }
  return true;
}

uint32_t PoolRuntime::effectiveWeight(const Member& m, uint64_t now) const {
  if (settings_.slow_start_ms == 0) return m.weight;
  // Scaled by 100 so a ramp has steps; never below 10% so a new endpoint gets some
  // traffic to prove itself.
  uint64_t elapsed = now - std::min(now, m.endpoint->outlier.ramp_start_ms);
  uint64_t percent = std::clamp<uint64_t>(elapsed * 100 / settings_.slow_start_ms, 10, 100);
  return static_cast<uint32_t>(m.weight * percent);
}

void PoolRuntime::decayEjections(EndpointRuntime::Outlier& state, uint64_t now, uint64_t base_ms) {
  if (state.ejected || state.ejections == 0 || base_ms == 0) return;
  if (now < state.decay_from_ms || now - state.decay_from_ms < base_ms) return;
  uint64_t steps = (now - state.decay_from_ms) / base_ms;
  if (steps >= state.ejections) {
    state.ejections = 0;
    return;
  }
  state.ejections -= static_cast<uint32_t>(steps);
  state.decay_from_ms += steps * base_ms;  // a partial interval still counts towards the next
}

int PoolRuntime::stickyMember(std::string_view id) const {
  for (size_t i = 0; i < members_.size(); ++i) {
    if (!members_[i].sticky_id.empty() && members_[i].sticky_id == id) return static_cast<int>(i);
  }
  return -1;
}

int PoolRuntime::pick(const PickRequest& request) {
  size_t n = members_.size();
  if (n == 0) return -1;
  uint64_t now = uv_now(ctx_.loop());
  size_t healthy = 0;
  for (size_t i = 0; i < n; ++i) {
    eligible_[i] = eligibleNow(members_[i], now) ? 1 : 0;
    healthy += eligible_[i];
  }
  if (request.sticky >= 0 && static_cast<size_t>(request.sticky) < n) {
    // Judged before panic mode widens the set: a client is never kept on a bad endpoint.
    size_t i = static_cast<size_t>(request.sticky);
    bool tried = i < 64 && (request.tried >> i) & 1;
    if (eligible_[i] && !tried) return request.sticky;
  }
  if (healthy == 0 || healthy * 100 < size_t{settings_.panic_threshold} * n) {
    if (settings_.panic_threshold > 0) {
      // Panic: too few healthy endpoints to carry the load; spread it over all of them
      // rather than crush the few (or fail everything).
      std::fill(eligible_.begin(), eligible_.end(), 1);
      if (stats_ != nullptr) stats_->panic_picks.add();
    } else if (healthy == 0) {
      if (stats_ != nullptr) stats_->no_healthy_endpoint.add();
      return -1;
    }
  }
  if (request.tried != 0) {
    // A retry goes to an endpoint not tried yet, when there is one.
    bool other = false;
    for (size_t i = 0; i < n; ++i) {
      bool tried = i < 64 && (request.tried >> i) & 1;
      other = other || (eligible_[i] && !tried);
    }
    if (other) {
      for (size_t i = 0; i < n && i < 64; ++i) {
        if ((request.tried >> i) & 1) eligible_[i] = 0;
      }
    }
  }
  for (size_t i = 0; i < n; ++i) {
    weights_[i] = effectiveWeight(members_[i], now);
    active_[i] = members_[i].endpoint->active_requests;
  }
  PickContext context{n, eligible_.data(), weights_.data(), active_.data()};
  context.hash = request.hash;
  context.has_hash = request.has_hash;
  return static_cast<int>(balancer_->pick(context));
}

bool PoolRuntime::reportFailure(EndpointRuntime& endpoint) {
  const config::Outlier& o = settings_.outlier;
  EndpointRuntime::Outlier& state = endpoint.outlier;
  if (o.consecutive_errors == 0 || state.ejected) return false;
  if (++state.consecutive_errors < o.consecutive_errors) return false;
  state.consecutive_errors = 0;
  return eject(endpoint, uv_now(ctx_.loop()), "consecutive_errors");
}

bool PoolRuntime::eject(EndpointRuntime& endpoint, uint64_t now, const char* why) {
  const config::Outlier& o = settings_.outlier;
  EndpointRuntime::Outlier& state = endpoint.outlier;
  size_t ejected = 0;
  for (const Member& m : members_) {
    const auto& s = m.endpoint->outlier;
    if (s.ejected && now < s.ejected_until_ms) ejected++;
  }
  // At least one endpoint may always be ejected; more only within max_ejection_percent.
  if (ejected > 0 && (ejected + 1) * 100 > size_t{o.max_ejection_percent} * members_.size()) {
    if (stats_ != nullptr) stats_->outlier_ejections_skipped.add();
    return false;
  }
  decayEjections(state, now, o.base_ejection_time_ms);
  state.ejections++;
  uint64_t duration = std::min(o.base_ejection_time_ms * state.ejections, o.max_ejection_time_ms);
  state.ejected = true;
  state.ejected_until_ms = now + duration;
  if (stats_ != nullptr) stats_->outlier_ejections.add();
  log::warn("endpoint ejected",
            {log::str("pool", name_), log::str("endpoint", endpoint.key()), log::str("reason", why),
             log::num("ejection_ms", static_cast<long long>(duration)),
             log::num("ejections", state.ejections)});
  return true;
}

uint64_t PoolRuntime::p99(const EndpointRuntime& endpoint) {
  const auto& o = endpoint.outlier;
  if (o.latency_samples == 0) return 0;
  // The smallest bucket with at least 99% of the samples at or below it.
  uint64_t need = (uint64_t{o.latency_samples} * 99 + 99) / 100;
  uint64_t seen = 0;
  for (size_t k = 0; k < EndpointRuntime::Outlier::kLatencyBuckets; ++k) {
    seen += o.latency[k];
    if (seen >= need) return uint64_t{1} << k;
  }
  return uint64_t{1} << (EndpointRuntime::Outlier::kLatencyBuckets - 1);
}

bool PoolRuntime::reportLatency(EndpointRuntime& endpoint, uint64_t latency_ms) {
  const config::Outlier& o = settings_.outlier;
  if (o.latency_factor == 0) return false;
  auto& state = endpoint.outlier;
  size_t bucket = 0;
  while (bucket + 1 < EndpointRuntime::Outlier::kLatencyBuckets &&
         (uint64_t{1} << bucket) <= latency_ms) {
    bucket++;
  }
  state.latency[bucket]++;
  state.latency_samples++;
  if (++latency_window_samples_ < uint64_t{o.latency_min_requests} * members_.size()) return false;
  latency_window_samples_ = 0;

  // Judge the window against the median of the p99s of endpoints with enough samples.
  // (A window's vectors are allocated once per window, not per request.)
  std::vector<std::pair<uint64_t, EndpointRuntime*>> judged;
  for (const Member& m : members_) {
    if (m.endpoint->outlier.latency_samples >= o.latency_min_requests) {
      judged.emplace_back(p99(*m.endpoint), m.endpoint);
    }
  }
  bool ejected = false;
  if (judged.size() >= 2) {
    std::vector<uint64_t> values;
    for (const auto& j : judged) values.push_back(j.first);
    std::sort(values.begin(), values.end());
    uint64_t median = values[(values.size() - 1) / 2];  // the lower median: one slow one
                                                        // cannot lift it
    uint64_t now = uv_now(ctx_.loop());
    for (const auto& [value, e] : judged) {
      // Bucket bounds are powers of two; "under 1ms" compares as 1ms.
      if (!e->outlier.ejected && value > std::max<uint64_t>(median, 1) * o.latency_factor) {
        ejected = eject(*e, now, "latency") || ejected;
      }
    }
  }
  for (const Member& m : members_) {
    auto& s = m.endpoint->outlier;
    std::fill(std::begin(s.latency), std::end(s.latency), 0);
    s.latency_samples = 0;
  }
  return ejected;
}

void PoolRuntime::breakerState(const char*& open, const char* limit) {
  // Logged once per change (open at the first overflow, closed at the next admission
  // past the same check), not per refused request.
  if ((limit != nullptr) == (open != nullptr)) return;
  if (limit != nullptr) {
    log::warn("circuit breaker open", {log::str("pool", name_), log::str("limit", limit)});
  } else {
    log::info("circuit breaker closed", {log::str("pool", name_), log::str("limit", open)});
  }
  open = limit;
}

bool PoolRuntime::admitRequest() {
  if (active_requests < settings_.circuit_breaker.max_requests) {
    breakerState(requests_breaker_, nullptr);
    return true;
  }
  if (stats_ != nullptr) stats_->breaker_max_requests.add();
  breakerState(requests_breaker_, "max_requests");
  return false;
}

bool PoolRuntime::admitConnection() {
  const config::CircuitBreaker& cb = settings_.circuit_breaker;
  if (pending >= cb.max_pending) {
    if (stats_ != nullptr) stats_->breaker_max_pending.add();
    breakerState(connections_breaker_, "max_pending");
    return false;
  }
  uint64_t open = 0;
  for (const Member& m : members_) open += m.endpoint->openConnections();
  if (open >= cb.max_connections) {
    if (stats_ != nullptr) stats_->breaker_max_connections.add();
    breakerState(connections_breaker_, "max_connections");
    return false;
  }
  breakerState(connections_breaker_, nullptr);
  return true;
}

bool PoolRuntime::admitRetry() {
  const config::Retry& r = settings_.retry;
  uint64_t budget = std::max<uint64_t>(r.min_retry_concurrency,
                                       uint64_t{active_requests} * r.budget_percent / 100);
  if (active_retries < budget) return true;
  if (stats_ != nullptr) stats_->retry_budget_exhausted.add();
  return false;
}

// ---------------------------------------------------------------- UpstreamRegistry

UpstreamRegistry::~UpstreamRegistry() = default;

void UpstreamRegistry::apply(const config::Snapshot& snapshot) {
  bool first_apply = endpoints_.empty() && pools_by_name_.empty();
  uint64_t now = uv_now(ctx_.loop());
  active_by_service_.clear();
  split_by_service_.clear();
  for (const auto& [service_name, service] : snapshot.services) {
    for (const auto& [pool_name, pool] : service.pools) {
      std::string pool_key = service_name + "/" + pool_name;
      auto& runtime = pools_by_name_[pool_key];
      if (runtime == nullptr) runtime = std::make_unique<PoolRuntime>(ctx_, pool_key);
      std::vector<PoolRuntime::Member> members;
      for (const config::Endpoint& endpoint : pool.endpoints) {
        // A connection is reused only for the same peer: address and TLS identity.
        auto& slot = endpoints_[runtimeKey(endpoint, pool)];
        if (slot == nullptr) {
          slot = std::make_unique<EndpointRuntime>(ctx_, connection_slabs_, endpoint.key,
                                                   endpoint.addresses.front());
          // Endpoints added by a reload ramp up (slow start); those present at startup
          // take full load at once.
          if (!first_apply) slot->outlier.ramp_start_ms = now;
        } else {
          slot->setAddress(endpoint.addresses.front());
        }
        slot->setTls(pool.tls, endpoint.host);
        slot->setPoolLimits(service.max_idle_connections, service.idle_connection_timeout_ms);
        slot->setProtocol(pool.protocol, pool.max_streams_per_connection);
        PoolRuntime::Member member;
        member.endpoint = slot.get();
        member.weight = endpoint.weight;
        if (service.balancing.health_check.enabled) {
          member.health = HealthBoard::process().entry(service_name, endpoint.key);
          member.health_generation = member.health->generation.load(std::memory_order_relaxed);
        }
        members.push_back(std::move(member));
      }
      runtime->configure(service, std::move(members), stats_);
      if (pool_name == service.active) active_by_service_[&service] = runtime.get();
    }
  }
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
    for (const PoolRuntime::Member& m : runtime->members()) in_use.insert(m.endpoint);
  }
  for (const auto& [service, weighted] : split_by_service_) {
    for (const WeightedPool& w : weighted) {
      for (const PoolRuntime::Member& m : w.pool->members()) in_use.insert(m.endpoint);
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
