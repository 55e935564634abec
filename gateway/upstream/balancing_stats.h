#pragma once
// Per-worker counters of load-balancing decisions. One writer (the worker's loop); the
// control thread reads them for /stats. Relaxed loads and stores, no read-modify-write.

#include <atomic>
#include <cstdint>

namespace gw::upstream {

class DecisionCounter {
 public:
  void add() {
    value_.store(value_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  uint64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

struct BalancingStats {
  DecisionCounter outlier_ejections;          // an endpoint was ejected (passive detection)
  DecisionCounter outlier_returns;            // an ejected endpoint came back
  DecisionCounter outlier_ejections_skipped;  // would eject, but max_ejection_percent holds
  DecisionCounter panic_picks;                // picked among all endpoints (panic mode)
  DecisionCounter no_healthy_endpoint;        // 503: nothing to pick
  DecisionCounter breaker_max_requests;       // 503: circuit breaker overflow, by limit
  DecisionCounter breaker_max_pending;
  DecisionCounter breaker_max_connections;
  DecisionCounter retries;                 // a try was repeated (policy retries)
  DecisionCounter retry_budget_exhausted;  // a retry was wanted but the budget said no
};

}  // namespace gw::upstream
