#pragma once
// The load-balancer seam: given a pool's endpoints and which of them may be picked
// (health, outlier ejection and retries decide that in the caller, PoolRuntime), pick
// one. One instance per pool per worker, so policies keep cursors without locks.
//
// Contract: every call runs on the worker's loop and never re-enters. setEndpoints()
// runs when the pool's endpoint set is (re)applied, before any pick() over the new set.
// pick() returns an index in [0, endpoint_count) whose `eligible` entry is set; the
// caller guarantees that at least one endpoint is eligible.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gw::upstream {

struct PickContext {
  size_t endpoint_count = 0;
  const uint8_t* eligible = nullptr;  // per endpoint, non-zero: may be picked (null: all)
  const uint32_t* weights = nullptr;  // per endpoint effective weight >= 1 (null: all 1)
  const uint32_t* active = nullptr;   // per endpoint requests in flight (null: all 0)
  uint64_t hash = 0;                  // the request's hash key (consistent_hash)
  bool has_hash = false;              // false: consistent_hash falls back to random

  bool isEligible(size_t i) const { return eligible == nullptr || eligible[i] != 0; }
  uint32_t weight(size_t i) const { return weights == nullptr ? 1 : weights[i]; }
  uint32_t activeOf(size_t i) const { return active == nullptr ? 0 : active[i]; }
};

class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;
  // The pool's endpoint identities (keys) and configured weights, in pick() index order.
  virtual void setEndpoints(const std::vector<std::string>& keys,
                            const std::vector<uint32_t>& weights) {
    (void)keys;
    (void)weights;
  }
  virtual size_t pick(const PickContext& context) = 0;
};

// Small, fast, seedable generator (splitmix64); not for secrets.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next();
  // Uniform in [0, n), n > 0.
  uint64_t below(uint64_t n) { return next() % n; }

 private:
  uint64_t state_;
};

// A stable 64-bit hash (FNV-1a, then a mixing step): the same on every worker and run.
uint64_t hashKey(std::string_view key);

// Cycles through the eligible endpoints in order, ignoring weights.
class RoundRobin final : public LoadBalancer {
 public:
  size_t pick(const PickContext& context) override;

 private:
  size_t next_ = 0;
};

// Smooth weighted round robin (nginx): each pick adds every eligible endpoint's weight to
// its score, takes the highest score and subtracts the total from it. Weights 5:1:1 give
// a a b a c a a, not a a a a a b c.
class WeightedRoundRobin final : public LoadBalancer {
 public:
  void setEndpoints(const std::vector<std::string>& keys,
                    const std::vector<uint32_t>& weights) override;
  size_t pick(const PickContext& context) override;

 private:
  std::vector<int64_t> score_;
};

// Power of two choices: two random eligible endpoints, the one with fewer requests in
// flight per unit of weight wins (ties: the first drawn).
class LeastRequest final : public LoadBalancer {
 public:
  explicit LeastRequest(uint64_t seed = 0x9e3779b97f4a7c15ull) : rng_(seed) {}
  size_t pick(const PickContext& context) override;

 private:
  Rng rng_;
};

// Random, proportional to weight.
class RandomPick final : public LoadBalancer {
 public:
  explicit RandomPick(uint64_t seed = 0x2545f4914f6cdd1dull) : rng_(seed) {}
  size_t pick(const PickContext& context) override;

 private:
  Rng rng_;
};

// Ring hash (Karger et al.): each endpoint owns kPointsPerWeight * weight points on a
// 64-bit ring placed by hashing its key, so a request's hash maps to the next point
// clockwise. Removing one of N endpoints moves only the keys it owned (~1/N); adding it
// back restores them. An ineligible owner passes the key on to the next point's owner.
class RingHash final : public LoadBalancer {
 public:
  static constexpr uint32_t kPointsPerWeight = 160;
  explicit RingHash(uint64_t seed = 0x94d049bb133111ebull) : fallback_(seed) {}
  void setEndpoints(const std::vector<std::string>& keys,
                    const std::vector<uint32_t>& weights) override;
  size_t pick(const PickContext& context) override;

 private:
  struct Point {
    uint64_t hash;
    uint32_t endpoint;
  };
  std::vector<Point> ring_;
  RandomPick fallback_;  // requests without a hash key
};

// The policy named in the config; nullptr for an unknown name (the config loader has
// already refused those).
std::unique_ptr<LoadBalancer> makeLoadBalancer(std::string_view policy);

// The names makeLoadBalancer() knows, for the config loader's error message.
const std::vector<std::string_view>& loadBalancerNames();

}  // namespace gw::upstream
