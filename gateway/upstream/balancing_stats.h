#pragma once
// Per-worker counters of load-balancing decisions. One writer (the worker's loop); the
// control thread reads them for /stats. Relaxed loads and stores, no read-modify-write.

#include <cstdint>

#include "gateway/core/counter.h"

namespace gw::upstream {

struct BalancingStats {
  Counter outlier_ejections;          // an endpoint was ejected (passive detection)
  Counter outlier_returns;            // an ejected endpoint came back
  Counter outlier_ejections_skipped;  // would eject, but max_ejection_percent holds
  Counter panic_picks;                // picked among all endpoints (panic mode)
  Counter no_healthy_endpoint;        // 503: nothing to pick
  Counter breaker_max_requests;       // 503: circuit breaker overflow, by limit
  Counter breaker_max_pending;
  Counter breaker_max_connections;
  Counter retries;                 // a try was repeated (policy retries)
  Counter retry_budget_exhausted;  // a retry was wanted but the budget said no
};

}  // namespace gw::upstream
