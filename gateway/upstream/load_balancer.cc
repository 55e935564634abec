#include "gateway/upstream/load_balancer.h"

#include <algorithm>

namespace gw::upstream {

uint64_t Rng::next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t hashKey(std::string_view key) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  // FNV alone clusters similar keys ("a#1", "a#2") on the ring; mix the bits.
  h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdull;
  h = (h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53ull;
  return h ^ (h >> 33);
}

namespace {

// A uniformly random eligible index: draw, then probe forward past ineligible ones. The
// probe skews slightly towards endpoints after an ineligible one; acceptable, and it
// needs no allocation.
size_t randomEligible(const PickContext& c, Rng& rng) {
  size_t start = rng.below(c.endpoint_count);
  for (size_t k = 0; k < c.endpoint_count; ++k) {
    size_t i = (start + k) % c.endpoint_count;
    if (c.isEligible(i)) return i;
  }
  return start;  // unreachable under the contract
}

}  // namespace

size_t RoundRobin::pick(const PickContext& c) {
  for (size_t k = 0; k < c.endpoint_count; ++k) {
    size_t i = (next_ + k) % c.endpoint_count;
    if (c.isEligible(i)) {
      next_ = i + 1;
      return i;
    }
  }
  return 0;
}

void WeightedRoundRobin::setEndpoints(const std::vector<std::string>& keys,
                                      const std::vector<uint32_t>&) {
  score_.assign(keys.size(), 0);
}

size_t WeightedRoundRobin::pick(const PickContext& c) {
  if (score_.size() != c.endpoint_count) score_.assign(c.endpoint_count, 0);
  int64_t total = 0;
  size_t best = c.endpoint_count;
  for (size_t i = 0; i < c.endpoint_count; ++i) {
    if (!c.isEligible(i)) continue;
    int64_t w = c.weight(i);
    score_[i] += w;
    total += w;
    if (best == c.endpoint_count || score_[i] > score_[best]) best = i;
  }
  if (best == c.endpoint_count) return 0;
  score_[best] -= total;
  return best;
}

size_t LeastRequest::pick(const PickContext& c) {
  size_t a = randomEligible(c, rng_);
  size_t b = randomEligible(c, rng_);
  // Compare active/weight without division: active_a * w_b vs active_b * w_a.
  uint64_t load_a = static_cast<uint64_t>(c.activeOf(a)) * c.weight(b);
  uint64_t load_b = static_cast<uint64_t>(c.activeOf(b)) * c.weight(a);
  return load_b < load_a ? b : a;
}

size_t RandomPick::pick(const PickContext& c) {
  uint64_t total = 0;
  for (size_t i = 0; i < c.endpoint_count; ++i) {
    if (c.isEligible(i)) total += c.weight(i);
  }
  if (total == 0) return 0;
  uint64_t r = rng_.below(total);
  for (size_t i = 0; i < c.endpoint_count; ++i) {
    if (!c.isEligible(i)) continue;
    if (r < c.weight(i)) return i;
    r -= c.weight(i);
  }
  return 0;
}

void RingHash::setEndpoints(const std::vector<std::string>& keys,
                            const std::vector<uint32_t>& weights) {
  ring_.clear();
  for (size_t i = 0; i < keys.size(); ++i) {
    uint32_t points = kPointsPerWeight * std::max<uint32_t>(1, i < weights.size() ? weights[i] : 1);
    std::string label = keys[i];
    label += '#';
    size_t base = label.size();
    for (uint32_t p = 0; p < points; ++p) {
      label.resize(base);
      label += std::to_string(p);
      ring_.push_back(Point{hashKey(label), static_cast<uint32_t>(i)});
    }
  }
  std::sort(ring_.begin(), ring_.end(), [](const Point& a, const Point& b) {
    return a.hash != b.hash ? a.hash < b.hash : a.endpoint < b.endpoint;
  });
}

size_t RingHash::pick(const PickContext& c) {
  if (!c.has_hash || ring_.empty()) return fallback_.pick(c);
  auto it = std::lower_bound(ring_.begin(), ring_.end(), c.hash,
                             [](const Point& p, uint64_t h) { return p.hash < h; });
  size_t start = static_cast<size_t>(it - ring_.begin());
  for (size_t k = 0; k < ring_.size(); ++k) {
    const Point& p = ring_[(start + k) % ring_.size()];
    if (p.endpoint < c.endpoint_count && c.isEligible(p.endpoint)) return p.endpoint;
  }
  return fallback_.pick(c);
}

const std::vector<std::string_view>& loadBalancerNames() {
  static const std::vector<std::string_view> kNames = {
      "round_robin", "weighted_round_robin", "least_request", "random", "consistent_hash"};
  return kNames;
}

std::unique_ptr<LoadBalancer> makeLoadBalancer(std::string_view policy) {
  if (policy == "round_robin") return std::make_unique<RoundRobin>();
  if (policy == "weighted_round_robin") return std::make_unique<WeightedRoundRobin>();
  if (policy == "least_request") return std::make_unique<LeastRequest>();
  if (policy == "random") return std::make_unique<RandomPick>();
  if (policy == "consistent_hash") return std::make_unique<RingHash>();
  return nullptr;
}

}  // namespace gw::upstream
