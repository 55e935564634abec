#pragma once
// The per-service settings of load balancing, health checking, outlier ejection, circuit
// breaking and retries ([services.NAME] keys; parsed in resilience.cc). Part of the
// immutable Snapshot; the runtime state they govern lives in the workers
// (gateway/upstream) and the control thread (gateway/health).

#include <cstdint>
#include <string>
#include <vector>

namespace gw::config {

// What consistent_hash hashes: hash_key = "header:NAME" | "cookie:NAME" | "path" |
// "client_ip".
struct HashKey {
  enum class Source { ClientIp, Header, Cookie, Path } source = Source::ClientIp;
  std::string name;  // header (lower case) or cookie name
};

// health_check = { path = "/healthz", interval = "5s", ... }: active HTTP checks, run
// from the control thread against every endpoint of every pool of the service.
struct HealthCheck {
  bool enabled = false;  // true when the table is present
  std::string path = "/";
  std::string host;  // Host header; empty: the endpoint as written
  uint32_t expected_min = 200;
  uint32_t expected_max = 399;
  uint64_t interval_ms = 5'000;
  uint64_t timeout_ms = 1'000;
  uint64_t jitter_ms = 0;  // each interval gets up to this much extra, at random
  uint32_t healthy = 2;    // consecutive passes to mark an unhealthy endpoint up
  uint32_t unhealthy = 3;  // consecutive failures to mark a healthy endpoint down
};

// outlier = { consecutive_errors = 5, ... }: passive detection, per worker.
struct Outlier {
  uint32_t consecutive_errors = 5;          // 5xx responses, connect failures, resets; 0: off
  uint64_t base_ejection_time_ms = 30'000;  // times the number of ejections so far
  uint64_t max_ejection_time_ms = 300'000;
  uint32_t max_ejection_percent = 10;  // of the pool; at least one may always be ejected
  // Latency outliers: an endpoint whose p99 over the last window exceeds the median of
  // the pool's endpoint p99s by this factor is ejected too. 0: off.
  uint32_t latency_factor = 0;
  uint32_t latency_min_requests = 50;  // per endpoint per window, to be judged
};

// circuit_breaker = { max_connections = ..., ... }: per pool, per worker. Over: 503.
struct CircuitBreaker {
  uint32_t max_connections = 100'000;  // open upstream connections
  uint32_t max_pending = 100'000;      // requests waiting for a connection to open
  uint32_t max_requests = 100'000;     // requests in flight
};

// retry = { attempts = 2, on = ["connect_failure", "reset", "503"], ... }
struct Retry {
  uint32_t attempts = 0;  // retries after the first try; 0: off (the stale keep-alive
                          // connection retry always applies)
  bool on_connect_failure = true;
  bool on_reset = false;               // the connection failed before any response byte
  std::vector<uint32_t> on_status;     // e.g. 502, 503
  bool non_idempotent = false;         // also retry POST, PATCH, ...
  uint64_t per_try_timeout_ms = 0;     // 0: upstream_response_timeout
  uint32_t budget_percent = 20;        // retries in flight at most this % of requests in flight
  uint32_t min_retry_concurrency = 3;  // ... but always allow this many
  uint64_t backoff_base_ms = 25;       // backoff before retry n: random in [0, base * 2^n]
  uint64_t backoff_max_ms = 250;
};

// sticky = { cookie = "GW_STICKY", ttl = "1h", ... }: a client's cookie names the endpoint
// that served it first (by an opaque id, never the address), and later requests go there
// while it is healthy. Applies to every pool of the service, with any policy.
struct Sticky {
  bool enabled = false;  // true when `sticky = true` or a table
  std::string cookie = "GW_STICKY";
  uint64_t ttl_ms = 0;  // Max-Age; 0: a session cookie (no Max-Age)
  std::string path = "/";
  std::string domain;  // empty: host-only cookie
  bool secure = false;
  bool http_only = true;
  std::string same_site;  // "Strict", "Lax", "None"; empty: not sent
  // Keys the endpoint ids; the same on every gateway instance keeps clients stuck across
  // instances and restarts. Empty: a random secret per process.
  std::string secret;
};

struct Balancing {
  HashKey hash_key;
  Sticky sticky;
  uint64_t slow_start_ms = 0;        // a new or returning endpoint ramps its weight; 0: off
  uint32_t panic_threshold = 0;      // % healthy below which all endpoints are used; 0: off
  uint64_t dns_refresh_ms = 30'000;  // hostname endpoints are re-resolved this often; 0: off
  HealthCheck health_check;
  Outlier outlier;
  CircuitBreaker circuit_breaker;
  Retry retry;
};

}  // namespace gw::config
