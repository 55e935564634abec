// GET /metrics (Prometheus text format 0.0.4), GET /debug/workers and GET /debug/memory.
// Everything here runs on the control thread at scrape time: it sums the workers'
// single-writer counters (relaxed loads), takes label values from the running snapshot,
// and reads /proc. Nothing is computed on the request path.
#include <malloc.h>

#include <cstdio>
#include <map>

#include "gateway/core/log.h"
#include "gateway/core/slab_pool.h"
#include "gateway/loop/control.h"
#include "gateway/observe/heap_profile.h"
#include "gateway/observe/process_stats.h"
#include "gateway/observe/prometheus.h"

namespace gw::loop {
namespace {

using observe::PrometheusWriter;
using proxy::WorkerStats;

constexpr const char* kClassNames[proxy::kStatusClasses] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
constexpr const char* kFilterCodeNames[proxy::kFilterReplyCodes] = {"401", "403", "429",
                                                                    "4xx", "5xx", "other"};

double seconds(uint64_t us) { return static_cast<double>(us) / 1e6; }

using Workers = std::vector<std::unique_ptr<Worker>>;

template <typename Get>
uint64_t sumOver(const Workers& workers, Get get) {
  uint64_t sum = 0;
  for (const auto& w : workers) sum += get(w->stats());
  return sum;
}

// One histogram summed over the workers; `get(stats)` is the worker's histogram.
template <typename Get>
void appendHistogram(PrometheusWriter& out, const Workers& workers, const char* name,
                     std::initializer_list<observe::Label> labels, Get get) {
  uint64_t buckets[observe::kDurationBounds + 1] = {};
  uint64_t sum = 0;
  for (const auto& w : workers) {
    const observe::DurationHistogram& h = get(w->stats());
    for (size_t i = 0; i <= observe::kDurationBounds; ++i) buckets[i] += h.bucket(i);
    sum += h.sumUs();
  }
  out.histogram(name, labels, buckets, sum);
}

}  // namespace

#define sumWorkers(get) sumOver(workers_, get)

void Control::appendCounter(PrometheusWriter& out, const char* name, const char* help,
                            uint64_t value) const {
  out.family(name, "counter", help);
  out.sample(name, {}, value);
}

void Control::appendGauge(PrometheusWriter& out, const char* name, const char* help,
                          double value) const {
  out.family(name, "gauge", help);
  out.sample(name, {}, value);
}

void Control::appendProcessMetrics(PrometheusWriter& out) const {
  observe::ProcessStats p = observe::readProcessStats();
  appendGauge(out, "gateway_uptime_seconds", "Seconds since the process started.",
              observe::processUptimeSeconds());
  appendGauge(out, "gateway_process_start_time_seconds",
              "Start time of the process since the Unix epoch, in seconds.",
              observe::processStartTimeSeconds());
  appendGauge(out, "gateway_process_resident_memory_bytes", "Resident memory size (VmRSS).",
              static_cast<double>(p.resident_bytes));
  appendGauge(out, "gateway_process_virtual_memory_bytes", "Virtual memory size (VmSize).",
              static_cast<double>(p.virtual_bytes));
  appendGauge(out, "gateway_process_open_fds", "Open file descriptors.",
              static_cast<double>(p.open_fds));
  appendGauge(out, "gateway_process_max_fds", "The open file descriptor limit (soft).",
              static_cast<double>(p.max_fds));
  appendGauge(out, "gateway_process_threads", "Threads of the process.",
              static_cast<double>(p.threads));
  out.family("gateway_process_cpu_seconds_total", "counter",
             "User and system CPU time spent, in seconds.");
  out.sample("gateway_process_cpu_seconds_total", {}, p.cpu_seconds);
}

void Control::appendConfigMetrics(PrometheusWriter& out) const {
  appendGauge(out, "gateway_workers", "Worker threads (one loop each).",
              static_cast<double>(workers_.size()));
  appendGauge(out, "gateway_config_version",
              "Version of the running config (1 at start, +1 per applied change).",
              static_cast<double>(config_version_));
  out.family("gateway_config_reloads_total", "counter", "Config reloads by result.");
  out.sample("gateway_config_reloads_total", {{"result", "success"}}, reloads_ok_);
  out.sample("gateway_config_reloads_total", {{"result", "failure"}}, reloads_failed_);
  appendGauge(out, "gateway_config_last_reload_successful",
              "1 when the last reload attempt succeeded (or none was made), else 0.",
              last_reload_ok_ ? 1.0 : 0.0);
  out.family("gateway_config_info", "gauge", "The running config: its source and hash.");
  out.sample("gateway_config_info", {{"source", snapshot_->source}, {"hash", snapshot_->hash}},
             uint64_t{1});
  appendCounter(out, "gateway_canary_rollbacks_total", "Canaries rolled back.", canary_rollbacks_);
  appendCounter(out, "gateway_canary_promotions_total", "Canaries promoted.", canary_promotions_);
}

void Control::appendDownstreamMetrics(PrometheusWriter& out) const {
  struct Simple {
    const char* name;
    const char* type;
    const char* help;
    Counter WorkerStats::*counter;
  };
  static const Simple kSimple[] = {
      {"gateway_downstream_connections_accepted_total", "counter", "Client connections accepted.",
       &WorkerStats::connections_accepted},
      {"gateway_downstream_connections_refused_total", "counter",
       "Client connections closed at once: over max_connections.",
       &WorkerStats::connections_refused},
      {"gateway_downstream_connections_active", "gauge", "Open client connections.",
       &WorkerStats::connections_active},
      {"gateway_downstream_requests_total", "counter", "Requests received (heads parsed).",
       &WorkerStats::requests},
      {"gateway_downstream_requests_active", "gauge", "Requests in flight.",
       &WorkerStats::requests_active},
      {"gateway_downstream_bytes_received_total", "counter",
       "Bytes received from clients (after TLS).", &WorkerStats::bytes_received},
      {"gateway_downstream_bytes_sent_total", "counter",
       "Response bytes (heads and bodies) sent to clients, counted when each exchange ends.",
       &WorkerStats::bytes_sent},
      {"gateway_local_replies_total", "counter",
       "Responses made by the gateway itself (errors, redirects, filter replies).",
       &WorkerStats::local_replies},
      {"gateway_bad_requests_total", "counter", "Malformed requests refused with a 4xx.",
       &WorkerStats::bad_requests},
      {"gateway_header_timeouts_total", "counter", "Requests whose head did not arrive in time.",
       &WorkerStats::header_timeouts},
      {"gateway_upstream_connect_failures_total", "counter", "Upstream connections that failed.",
       &WorkerStats::upstream_connect_failures},
      {"gateway_upstream_timeouts_total", "counter", "Upstream connect and response timeouts.",
       &WorkerStats::upstream_timeouts},
      {"gateway_upstream_resets_total", "counter", "Upstreams that failed mid-response.",
       &WorkerStats::upstream_resets},
      {"gateway_upstream_stale_connection_retries_total", "counter",
       "Requests repeated on a fresh connection after a reused one was closed.",
       &WorkerStats::upstream_retries},
      {"gateway_snapshots_retained", "gauge",
       "Replaced config snapshots still pinned by open work.", &WorkerStats::snapshots_retained},
  };
  for (const Simple& s : kSimple) {
    out.family(s.name, s.type, s.help);
    out.sample(s.name, {}, sumWorkers([&](const WorkerStats& w) { return (w.*s.counter).get(); }));
  }
  out.family("gateway_downstream_responses_total", "counter",
             "Responses sent to clients by status class (all routes, and requests that "
             "matched none).");
  Counter WorkerStats::*classes[] = {&WorkerStats::responses_1xx, &WorkerStats::responses_2xx,
                                     &WorkerStats::responses_3xx, &WorkerStats::responses_4xx,
                                     &WorkerStats::responses_5xx};
  for (size_t c = 0; c < proxy::kStatusClasses; ++c) {
    out.sample("gateway_downstream_responses_total", {{"class", kClassNames[c]}},
               sumWorkers([&](const WorkerStats& w) { return (w.*classes[c]).get(); }));
  }
}

void Control::appendRouteMetrics(PrometheusWriter& out) const {
  const auto& routes = snapshot_->router->routes();
  out.family("gateway_route_responses_total", "counter",
             "Responses by route and status class (with [metrics] enabled).");
  for (const route::Route& r : routes) {
    if (r.stats_slot == 0) continue;
    for (size_t c = 0; c < proxy::kStatusClasses; ++c) {
      out.sample("gateway_route_responses_total",
                 {{"route", r.name}, {"service", r.service}, {"class", kClassNames[c]}},
                 sumWorkers([&](const WorkerStats& w) {
                   return w.route_responses[r.stats_slot][c].get();
                 }));
    }
  }
  static const char* kTotalHelp =
      "Request duration by route: from the request head to the end of the exchange.";
  static const char* kUpstreamHelp =
      "Upstream duration by route: from the first try to the end of the upstream response.";
  out.family("gateway_route_request_duration_seconds", "histogram", kTotalHelp);
  for (const route::Route& r : routes) {
    if (r.stats_slot == 0) continue;
    appendHistogram(
        out, workers_, "gateway_route_request_duration_seconds",
        {{"route", r.name}, {"service", r.service}}, [&](const WorkerStats& w) -> auto& {
          return w.route_duration[r.stats_slot];
        });
  }
  out.family("gateway_route_upstream_duration_seconds", "histogram", kUpstreamHelp);
  for (const route::Route& r : routes) {
    if (r.stats_slot == 0) continue;
    appendHistogram(
        out, workers_, "gateway_route_upstream_duration_seconds",
        {{"route", r.name}, {"service", r.service}}, [&](const WorkerStats& w) -> auto& {
          return w.route_upstream_duration[r.stats_slot];
        });
  }
}

void Control::appendPoolMetrics(PrometheusWriter& out) const {
  out.family("gateway_pool_responses_total", "counter",
             "Responses by service pool and status class (with [metrics] enabled).");
  for (const auto& [service_name, service] : snapshot_->services) {
    for (const auto& [pool_name, pool] : service.pools) {
      if (pool.stats_slot == 0) continue;
      for (size_t c = 0; c < proxy::kStatusClasses; ++c) {
        out.sample("gateway_pool_responses_total",
                   {{"service", service_name}, {"pool", pool_name}, {"class", kClassNames[c]}},
                   sumWorkers([&](const WorkerStats& w) {
                     return w.pool_responses[pool.stats_slot][c].get();
                   }));
      }
    }
  }
  const char* names[] = {"gateway_pool_request_duration_seconds",
                         "gateway_pool_upstream_duration_seconds"};
  const char* helps[] = {
      "Request duration by pool: from the request head to the end of the exchange.",
      "Upstream duration by pool: from the first try to the end of the upstream response."};
  for (size_t k = 0; k < 2; ++k) {
    out.family(names[k], "histogram", helps[k]);
    for (const auto& [service_name, service] : snapshot_->services) {
      for (const auto& [pool_name, pool] : service.pools) {
        if (pool.stats_slot == 0) continue;
        uint16_t slot = pool.stats_slot;
        appendHistogram(
            out, workers_, names[k],
            {{"service", service_name}, {"pool", pool_name}}, [&](const WorkerStats& w) -> auto& {
              return k == 0 ? w.pool_duration[slot] : w.pool_upstream_duration[slot];
            });
      }
    }
  }
  out.family("gateway_pool_active", "gauge",
             "1 for the pool of each service that gets its traffic (blue-green), else 0.");
  for (const auto& [service_name, service] : snapshot_->services) {
    for (const auto& [pool_name, pool] : service.pools) {
      out.sample("gateway_pool_active", {{"service", service_name}, {"pool", pool_name}},
                 uint64_t{pool_name == service.active ? 1u : 0u});
    }
  }
  out.family("gateway_endpoint_up", "gauge",
             "1 unless active health checks report the endpoint down (unchecked endpoints "
             "count as up).");
  for (const auto& [service_name, service] : snapshot_->services) {
    for (const auto& [pool_name, pool] : service.pools) {
      for (const config::Endpoint& e : pool.endpoints) {
        std::string state =
            health_ != nullptr ? health_->endpointState(service_name, e.key) : "not_checked";
        out.sample("gateway_endpoint_up",
                   {{"service", service_name}, {"pool", pool_name}, {"endpoint", e.key}},
                   uint64_t{state == "unhealthy" ? 0u : 1u});
      }
    }
  }
}

void Control::appendEndpointMetrics(PrometheusWriter& out) const {
  struct Sum {
    uint64_t open = 0, idle = 0, created = 0, connect_failures = 0;
  };
  std::map<std::string, Sum> by_endpoint;
  for (const auto& w : workers_) {
    for (const Worker::EndpointSample& s : w->endpointSamples()) {
      Sum& sum = by_endpoint[s.endpoint];
      sum.open += s.open;
      sum.idle += s.idle;
      sum.created += s.created;
      sum.connect_failures += s.connect_failures;
    }
  }
  out.family("gateway_endpoint_connections", "gauge",
             "Upstream connections per endpoint: active (busy or connecting) and idle "
             "(kept alive), sampled by each worker every 250ms.");
  for (const auto& [endpoint, s] : by_endpoint) {
    out.sample("gateway_endpoint_connections", {{"endpoint", endpoint}, {"state", "active"}},
               s.open - s.idle);
    out.sample("gateway_endpoint_connections", {{"endpoint", endpoint}, {"state", "idle"}}, s.idle);
  }
  out.family("gateway_endpoint_connections_created_total", "counter",
             "Upstream connections opened per endpoint (sampled every 250ms).");
  for (const auto& [endpoint, s] : by_endpoint) {
    out.sample("gateway_endpoint_connections_created_total", {{"endpoint", endpoint}}, s.created);
  }
  out.family("gateway_endpoint_connect_failures_total", "counter",
             "Upstream connects that failed per endpoint (sampled every 250ms).");
  for (const auto& [endpoint, s] : by_endpoint) {
    out.sample("gateway_endpoint_connect_failures_total", {{"endpoint", endpoint}},
               s.connect_failures);
  }
}

void Control::appendBalancingMetrics(PrometheusWriter& out) const {
  using upstream::BalancingStats;
  struct Simple {
    const char* name;
    const char* help;
    Counter BalancingStats::*counter;
  };
  static const Simple kSimple[] = {
      {"gateway_outlier_ejections_total", "Endpoints ejected by passive outlier detection.",
       &BalancingStats::outlier_ejections},
      {"gateway_outlier_returns_total", "Ejected endpoints that came back.",
       &BalancingStats::outlier_returns},
      {"gateway_outlier_ejections_skipped_total",
       "Ejections not made because max_ejection_percent holds.",
       &BalancingStats::outlier_ejections_skipped},
      {"gateway_panic_picks_total", "Picks among all endpoints (panic mode).",
       &BalancingStats::panic_picks},
      {"gateway_no_healthy_endpoint_total", "503s: no endpoint to pick.",
       &BalancingStats::no_healthy_endpoint},
      {"gateway_retries_total", "Tries repeated by a retry policy.", &BalancingStats::retries},
      {"gateway_retry_budget_exhausted_total", "Retries refused by the retry budget.",
       &BalancingStats::retry_budget_exhausted},
  };
  for (const Simple& s : kSimple) {
    appendCounter(out, s.name, s.help,
                  sumWorkers([&](const WorkerStats& w) { return (w.balancing.*s.counter).get(); }));
  }
  out.family("gateway_circuit_breaker_overflows_total", "counter",
             "503s from a circuit breaker, by the limit that overflowed.");
  std::pair<const char*, Counter BalancingStats::*> limits[] = {
      {"max_requests", &BalancingStats::breaker_max_requests},
      {"max_pending", &BalancingStats::breaker_max_pending},
      {"max_connections", &BalancingStats::breaker_max_connections}};
  for (const auto& [limit, counter] : limits) {
    out.sample("gateway_circuit_breaker_overflows_total", {{"limit", limit}},
               sumWorkers([&](const WorkerStats& w) { return (w.balancing.*counter).get(); }));
  }
  health::HealthChecker::Counters c;
  if (health_ != nullptr) c = health_->counters();
  out.family("gateway_health_checks_total", "counter", "Active health checks by result.");
  out.sample("gateway_health_checks_total", {{"result", "passed"}}, c.checks_passed);
  out.sample("gateway_health_checks_total", {{"result", "failed"}}, c.checks_failed);
  out.family("gateway_health_transitions_total", "counter",
             "Endpoints marked down or up by active health checks.");
  out.sample("gateway_health_transitions_total", {{"to", "down"}}, c.marked_down);
  out.sample("gateway_health_transitions_total", {{"to", "up"}}, c.marked_up);
}

void Control::appendTlsMetrics(PrometheusWriter& out) const {
  using tls::TlsCounters;
  auto sum = [&](Counter TlsCounters::*counter) {
    return sumWorkers([&](const WorkerStats& w) { return (w.tls.*counter).get(); });
  };
  appendCounter(out, "gateway_tls_handshakes_total", "Completed downstream TLS handshakes.",
                sum(&TlsCounters::handshakes));
  appendCounter(out, "gateway_tls_resumed_handshakes_total",
                "Downstream TLS handshakes that resumed a session.", sum(&TlsCounters::resumed));
  out.family("gateway_tls_handshake_failures_total", "counter",
             "Downstream TLS handshakes that failed, by reason.");
  std::pair<const char*, Counter TlsCounters::*> reasons[] = {
      {"handshake", &TlsCounters::handshake_failures},
      {"plain_http", &TlsCounters::plain_http},
      {"timeout", &TlsCounters::handshake_timeouts},
      {"client_certificate", &TlsCounters::client_cert_failures}};
  for (const auto& [reason, counter] : reasons) {
    out.sample("gateway_tls_handshake_failures_total", {{"reason", reason}}, sum(counter));
  }
  appendCounter(out, "gateway_tls_sni_unknown_total",
                "Handshakes whose SNI named no certificate (the default was served).",
                sum(&TlsCounters::sni_unknown));
  appendCounter(out, "gateway_tls_upstream_handshake_failures_total",
                "Upstream TLS handshakes or verifications that failed.",
                sum(&TlsCounters::upstream_handshake_failures));
}

void Control::appendHttp2Metrics(PrometheusWriter& out) const {
  using http2::Http2Counters;
  auto sum = [&](Counter Http2Counters::*counter) {
    return sumWorkers([&](const WorkerStats& w) { return (w.http2.*counter).get(); });
  };
  appendCounter(out, "gateway_http2_connections_total", "Client connections that spoke HTTP/2.",
                sum(&Http2Counters::connections));
  appendCounter(out, "gateway_http2_streams_total", "HTTP/2 request streams.",
                sum(&Http2Counters::streams));
  appendCounter(out, "gateway_http2_client_resets_total", "RST_STREAM frames from clients.",
                sum(&Http2Counters::client_resets));
  appendCounter(out, "gateway_http2_goaway_sent_total", "GOAWAY frames sent.",
                sum(&Http2Counters::goaway_sent));
  out.family("gateway_http2_rejected_streams_total", "counter",
             "HTTP/2 streams reset by the gateway, by reason.");
  std::pair<const char*, Counter Http2Counters::*> streams[] = {
      {"refused", &Http2Counters::refused_streams},
      {"malformed", &Http2Counters::malformed_requests},
      {"header_list_too_large", &Http2Counters::header_list_too_large}};
  for (const auto& [reason, counter] : streams) {
    out.sample("gateway_http2_rejected_streams_total", {{"reason", reason}}, sum(counter));
  }
  out.family("gateway_http2_connections_closed_total", "counter",
             "HTTP/2 connections ended with GOAWAY for abuse or protocol errors, by reason.");
  std::pair<const char*, Counter Http2Counters::*> reasons[] = {
      {"rapid_reset", &Http2Counters::rapid_reset},
      {"continuation_flood", &Http2Counters::continuation_flood},
      {"control_flood", &Http2Counters::control_flood},
      {"empty_frame_flood", &Http2Counters::empty_frame_flood},
      {"protocol_error", &Http2Counters::protocol_errors}};
  for (const auto& [reason, counter] : reasons) {
    out.sample("gateway_http2_connections_closed_total", {{"reason", reason}}, sum(counter));
  }
}

void Control::appendFilterMetrics(PrometheusWriter& out) const {
  out.family("gateway_filter_replies_total", "counter",
             "Local replies made by filters (rate limit 429, auth 401/403, ...), by filter "
             "type and status.");
  std::vector<std::string> types = filter::filterTypeSlotNames();
  for (size_t slot = 1; slot < types.size(); ++slot) {
    for (size_t code = 0; code < proxy::kFilterReplyCodes; ++code) {
      uint64_t n =
          sumWorkers([&](const WorkerStats& w) { return w.filter_replies[slot][code].get(); });
      if (n == 0) continue;
      out.sample("gateway_filter_replies_total",
                 {{"filter", types[slot]}, {"code", kFilterCodeNames[code]}}, n);
    }
  }
}

void Control::appendWorkerMetrics(PrometheusWriter& out) const {
  struct PerWorker {
    const char* name;
    const char* help;
    Counter WorkerStats::*counter;
    bool micros;
  };
  static const PerWorker kGauges[] = {
      {"gateway_worker_loop_lag_seconds",
       "How late the worker's 250ms lag timer fired last (event loop lag).",
       &WorkerStats::loop_lag_us, true},
      {"gateway_worker_loop_lag_max_seconds", "The largest loop lag sample of the last 10s.",
       &WorkerStats::loop_lag_max_us, true},
      {"gateway_worker_handles", "Active libuv handles of the worker's loop.",
       &WorkerStats::loop_handles, false},
      {"gateway_worker_connections", "Open client connections of the worker.",
       &WorkerStats::connections_active, false},
      {"gateway_worker_requests_active", "Requests in flight on the worker.",
       &WorkerStats::requests_active, false},
  };
  for (const PerWorker& g : kGauges) {
    out.family(g.name, "gauge", g.help);
    for (const auto& w : workers_) {
      std::string index = std::to_string(w->index());
      uint64_t v = (w->stats().*g.counter).get();
      if (g.micros) {
        out.sample(g.name, {{"worker", index}}, seconds(v));
      } else {
        out.sample(g.name, {{"worker", index}}, v);
      }
    }
  }
  out.family("gateway_worker_requests_total", "counter", "Requests received by the worker.");
  for (const auto& w : workers_) {
    out.sample("gateway_worker_requests_total", {{"worker", std::to_string(w->index())}},
               w->stats().requests.get());
  }
}

void Control::appendAccessLogMetrics(PrometheusWriter& out) const {
  using observe::AccessLogCounters;
  auto sum = [&](Counter AccessLogCounters::*counter) {
    return sumWorkers([&](const WorkerStats& w) { return (w.access_log.*counter).get(); });
  };
  appendCounter(out, "gateway_access_log_lines_total", "Access log lines buffered for writing.",
                sum(&AccessLogCounters::lines));
  appendCounter(out, "gateway_access_log_dropped_total",
                "Access log lines dropped because the buffer was full (slow disk).",
                sum(&AccessLogCounters::dropped));
  appendCounter(out, "gateway_access_log_write_errors_total", "Failed access log writes.",
                sum(&AccessLogCounters::write_errors));
  appendCounter(out, "gateway_access_log_reopens_total", "Access log reopens (SIGUSR1).",
                sum(&AccessLogCounters::reopens));
  appendGauge(out, "gateway_access_log_buffered_bytes", "Access log bytes not written yet.",
              static_cast<double>(sum(&AccessLogCounters::buffered_bytes)));
}

void Control::appendTraceExportMetrics(PrometheusWriter& out) const {
  using observe::TraceExportCounters;
  auto sum = [&](Counter TraceExportCounters::*counter) {
    return sumWorkers([&](const WorkerStats& w) { return (w.trace_export.*counter).get(); });
  };
  appendCounter(out, "gateway_trace_spans_exported_total", "Spans the OTLP collector accepted.",
                sum(&TraceExportCounters::exported));
  out.family("gateway_trace_spans_dropped_total", "counter",
             "Spans not exported: the queue was full, or their batch failed.");
  out.sample("gateway_trace_spans_dropped_total", {{"reason", "queue_full"}},
             sum(&TraceExportCounters::dropped_queue_full));
  out.sample("gateway_trace_spans_dropped_total", {{"reason", "export_failed"}},
             sum(&TraceExportCounters::dropped_export_failed));
  appendGauge(out, "gateway_trace_spans_queued", "Spans waiting for export (and in flight).",
              static_cast<double>(sum(&TraceExportCounters::queued)));
}

std::string Control::metricsText() const {
  PrometheusWriter out;
  appendProcessMetrics(out);
  appendConfigMetrics(out);
  appendDownstreamMetrics(out);
  appendRouteMetrics(out);
  appendPoolMetrics(out);
  appendEndpointMetrics(out);
  appendBalancingMetrics(out);
  appendTlsMetrics(out);
  appendHttp2Metrics(out);
  appendFilterMetrics(out);
  appendWorkerMetrics(out);
  appendAccessLogMetrics(out);
  appendTraceExportMetrics(out);
  return out.take();
}

admin::AdminReply Control::debugWorkersJson() const {
  std::string out = "{\"workers\":[";
  for (size_t i = 0; i < workers_.size(); ++i) {
    const WorkerStats& s = workers_[i]->stats();
    if (i > 0) out += ",";
    out += "{\"worker\":" + std::to_string(workers_[i]->index());
    out += ",\"connections\":" + std::to_string(s.connections_active.get());
    out += ",\"sessions\":" + std::to_string(s.sessions_open.get());
    out += ",\"requests_in_flight\":" + std::to_string(s.requests_active.get());
    out += ",\"requests\":" + std::to_string(s.requests.get());
    out += ",\"loop_lag_ms\":" + std::to_string(static_cast<double>(s.loop_lag_us.get()) / 1e3);
    out += ",\"loop_lag_max_ms\":" +
           std::to_string(static_cast<double>(s.loop_lag_max_us.get()) / 1e3);
    out += ",\"handles\":" + std::to_string(s.loop_handles.get());
    out += ",\"snapshots_retained\":" + std::to_string(s.snapshots_retained.get());
    out += ",\"access_log_buffered_bytes\":" + std::to_string(s.access_log.buffered_bytes.get());
    out += "}";
  }
  out += "]}\n";
  return admin::AdminReply{200, out};
}

admin::AdminReply Control::debugMemoryJson() const {
  observe::ProcessStats p = observe::readProcessStats();
  std::string out = "{\"rss_bytes\":" + std::to_string(p.resident_bytes);
  out += ",\"virtual_bytes\":" + std::to_string(p.virtual_bytes);
#if defined(__GLIBC__)
  struct mallinfo2 mi = mallinfo2();
  out += ",\"malloc\":{\"allocator\":\"glibc\"";
  out += ",\"arena_bytes\":" + std::to_string(mi.arena);
  out += ",\"mmap_bytes\":" + std::to_string(mi.hblkhd);
  out += ",\"in_use_bytes\":" + std::to_string(mi.uordblks);
  out += ",\"free_bytes\":" + std::to_string(mi.fordblks);
  out += ",\"releasable_bytes\":" + std::to_string(mi.keepcost);
  out += ",\"mmap_regions\":" + std::to_string(mi.hblks);
  // malloc_info: every arena (mallinfo2 covers the main arena only), as glibc's XML.
  char* xml = nullptr;
  size_t xml_size = 0;
  if (std::FILE* f = open_memstream(&xml, &xml_size)) {
    malloc_info(0, f);
    std::fclose(f);
  }
  out += ",\"malloc_info_xml\":\"";
  if (xml != nullptr) log::appendJsonEscaped(out, std::string_view(xml, xml_size));
  std::free(xml);
  out += "\"}";
#endif
  observe::appendJemallocStats(out);
  out += ",\"workers\":[";
  for (size_t i = 0; i < workers_.size(); ++i) {
    const WorkerStats& s = workers_[i]->stats();
    if (i > 0) out += ",";
    out += "{\"worker\":" + std::to_string(workers_[i]->index());
    out += ",\"exchanges_pooled\":" + std::to_string(s.exchanges_pooled.get());
    out += ",\"parsers_pooled\":" + std::to_string(s.parsers_pooled.get());
    out += ",\"sessions\":" + std::to_string(s.sessions_open.get());
    out +=
        ",\"session_slab_bytes\":" + std::to_string(s.session_slabs.get() * SlabPool::kSlabBytes);
    out += ",\"read_slab_bytes\":" + std::to_string(LoopContext::kReadSlabSize);
    out += ",\"stats_bytes\":" + std::to_string(sizeof(WorkerStats));
    out += ",\"access_log_buffered_bytes\":" + std::to_string(s.access_log.buffered_bytes.get());
    out += "}";
  }
  out += "]}\n";
  return admin::AdminReply{200, out};
}

#undef sumWorkers

}  // namespace gw::loop
