#pragma once
// Per-worker counters. One writer (the worker's loop); the control thread reads them
// for the admin API. Relaxed loads and stores: no read-modify-write, no contention.

#include <cstdint>

#include "gateway/config/snapshot.h"
#include "gateway/core/counter.h"
#include "gateway/filter/chain.h"
#include "gateway/http2/counters.h"
#include "gateway/observe/access_log.h"
#include "gateway/observe/histogram.h"
#include "gateway/observe/otlp.h"
#include "gateway/route/route.h"
#include "gateway/tls/counters.h"
#include "gateway/upstream/balancing_stats.h"

namespace gw::proxy {

using Counter = gw::Counter;  // gateway/core/counter.h

// Status classes 1xx..5xx as indexes 0..4 (anything else counts as 5xx).
constexpr size_t kStatusClasses = 5;
inline size_t statusClass(int status) {
  return status >= 100 && status < 500 ? static_cast<size_t>(status / 100 - 1) : 4;
}

// Local replies of a filter, by status: 401, 403, 429, other 4xx, 5xx, other.
constexpr size_t kFilterReplyCodes = 6;
inline size_t filterReplyCode(int status) {
  if (status == 401) return 0;
  if (status == 403) return 1;
  if (status == 429) return 2;
  if (status >= 400 && status < 500) return 3;
  if (status >= 500) return 4;
  return 5;
}

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
  // --- for /metrics and /debug (see gateway/observe) ---
  Counter requests_active;  // gauge: exchanges in flight
  Counter bytes_received;   // from clients (after TLS)
  Counter bytes_sent;       // to clients: response heads and bodies (after each exchange)
  // By route (route::Route::stats_slot) and by pool (config::Pool::stats_slot), with
  // [metrics] enabled: responses by status class, and durations. Total: from the request
  // head to the end of the exchange; upstream: from the first try to the upstream's
  // response end (or failure).
  Counter route_responses[route::kRouteStatSlots][kStatusClasses];
  Counter pool_responses[config::kPoolStatSlots][kStatusClasses];
  observe::DurationHistogram route_duration[route::kRouteStatSlots];
  observe::DurationHistogram route_upstream_duration[route::kRouteStatSlots];
  observe::DurationHistogram pool_duration[config::kPoolStatSlots];
  observe::DurationHistogram pool_upstream_duration[config::kPoolStatSlots];
  // Local replies of filters (rate limit 429, auth 401/403...) by filter type slot
  // (filter::filterTypeSlot) and filterReplyCode().
  Counter filter_replies[filter::kFilterStatSlots][kFilterReplyCodes];
  // The worker's loop, sampled by its lag timer.
  Counter loop_lag_us;       // gauge: the last sample
  Counter loop_lag_max_us;   // gauge: the largest over the last 10 s
  Counter loop_handles;      // gauge: active libuv handles
  Counter sessions_open;     // gauge: downstream sessions (incl. closing ones)
  Counter exchanges_pooled;  // gauge: free exchanges kept for reuse
  Counter parsers_pooled;    // gauge: free request parsers kept for reuse
  Counter session_slabs;     // gauge: 64 KiB slabs mapped for sessions (SlabPool)
  observe::AccessLogCounters access_log;
  observe::TraceExportCounters trace_export;  // OTLP span export (gateway/observe/otlp.h)
  tls::TlsCounters tls;                       // TLS handshakes and their failures (gateway/tls)
  http2::Http2Counters http2;                 // HTTP/2 streams, limits and flood defences
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
