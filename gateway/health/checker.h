#pragma once
// Active HTTP health checks, one probe per (service, endpoint) of every pool of every
// service with a health_check table, run from the control thread's loop (not once per
// worker). Each verdict change is logged once, counted, and written to the process's
// HealthBoard, which workers read without locks on the request path.
//
// State machine per endpoint: unchecked (counts as healthy) -> the first result decides
// -> then `unhealthy` consecutive failures mark it down and `healthy` consecutive passes
// mark it up. A check passes when the endpoint answers GET path with a status line in
// the expected range within the timeout.
//
// Loop-confined to the control thread. stop() before the loop's last run.

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "gateway/config/snapshot.h"
#include "gateway/core/loop_context.h"
#include "gateway/core/timer.h"
#include "gateway/upstream/health_board.h"
#include "gateway/upstream/load_balancer.h"

namespace gw::health {

class Probe;

class HealthChecker {
 public:
  struct Counters {
    uint64_t checks_passed = 0;
    uint64_t checks_failed = 0;
    uint64_t marked_down = 0;
    uint64_t marked_up = 0;
  };

  explicit HealthChecker(LoopContext& ctx, upstream::HealthBoard& board);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Reconciles the probes with `snapshot`: new endpoints get a probe, removed ones stop,
  // kept ones keep their state (and take new settings at their next check).
  void apply(const config::Snapshot& snapshot);
  // Stops every probe (shutdown). Connections in flight close.
  void stop();

  // True when `service`'s `pool` has at least one endpoint that is not known to be down
  // (unchecked endpoints count as healthy; so does every endpoint of a service without
  // health_check). False for an unknown service or pool.
  bool poolHasHealthyEndpoint(const config::Snapshot& snapshot, const std::string& service,
                              const std::string& pool) const;
  // "healthy", "unhealthy", "unchecked" (no result yet) or "not_checked" (no health_check).
  const char* endpointState(const std::string& service, const std::string& endpoint) const;
  const Counters& counters() const { return counters_; }

 private:
  friend class Probe;
  void onResult(Probe& probe, bool passed, const std::string& detail);

  LoopContext& ctx_;
  upstream::HealthBoard& board_;
  std::unordered_map<std::string, std::unique_ptr<Probe>> probes_;  // "service\nendpoint"
  upstream::Rng rng_;
  Counters counters_;
  bool stopped_ = false;
};

}  // namespace gw::health
