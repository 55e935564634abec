#pragma once
// Per-worker counters. One writer (the worker's loop); the control thread reads them
// for the admin API. Relaxed loads and stores: no read-modify-write, no contention.

#include <cstdint>

#include "gateway/config/snapshot.h"
#include "gateway/core/counter.h"
#include "gateway/tls/counters.h"
#include "gateway/upstream/balancing_stats.h"

namespace gw::proxy {

using Counter = gw::Counter;  // gateway/core/counter.h

struct WorkerStats {
  Counter connections_accepted;
  Counter connections_active;
  Counter connections_refused;  // over max_connections
  Counter requests;
  Counter responses_1xx, responses_2xx, responses_3xx, responses_4xx, responses_5xx;
  Counter local_replies;
  Counter bad_requests;  // malformed input refused with 4xx
  Counter upstream_connect_failures;
  Counter upstream_timeouts;
  Counter upstream_retries;
  Counter upstream_resets;  // upstream failed mid-response
  Counter header_timeouts;
  Counter snapshots_retained;  // gauge: replaced snapshots still pinned by open work
  Counter drains_started;      // sessions told to drain (shutdown or removed listener)
  // Per pool (index: config::Pool::stats_slot): requests answered, and those answered with
  // a 5xx (from the upstream, or ours when it failed). The canary's error rate.
  Counter pool_requests[config::kPoolStatSlots];
  Counter pool_failures[config::kPoolStatSlots];
  tls::TlsCounters tls;                // TLS handshakes and their failures (gateway/tls)
  upstream::BalancingStats balancing;  // ejections, breakers, retries, panic (gateway/upstream)

  void countStatus(int status) {
    if (status < 200)
      responses_1xx.add();
    else if (status < 300)
      responses_2xx.add();
    else if (status < 400)
      responses_3xx.add();
    else if (status < 500)
      responses_4xx.add();
    else
      responses_5xx.add();
  }
};

}  // namespace gw::proxy
