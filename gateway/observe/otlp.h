#pragma once
// Span export over OTLP/HTTP JSON (https://opentelemetry.io/docs/specs/otlp/): each worker
// queues the spans of its sampled, traced exchanges and POSTs them in batches to a
// collector at `[tracing] otlp_endpoint` (path /v1/traces), off the request path.
//
// - The queue is bounded (`max_queue` spans per worker). A span that finds it full is
//   dropped and counted (reason queue_full). A span is encoded into the queue's buffer
//   when its exchange ends (a few hundred bytes of appends; the buffer keeps its
//   capacity, so nothing is allocated per request once warm).
// - A batch (up to `batch_size` spans) goes out when the queue holds a full batch or
//   every `flush_interval`, as one POST on a keep-alive connection owned by the worker,
//   one request in flight. A batch that fails (no connection, an error status, no answer
//   within `export_timeout`, a reset) is dropped and counted (reason export_failed); the
//   connection is closed and made again at the next flush. So a slow or dead collector
//   costs a worker a bounded buffer and one connection attempt per flush interval.
// - The endpoint is an IP address: nothing resolves names on a worker's loop.
//
// Loop-confined, except the counters, which the control thread reads.

#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/counter.h"
#include "gateway/core/loop_context.h"
#include "gateway/core/timer.h"

namespace gw::observe {

// [tracing]: OTLP export (off unless `otlp_endpoint` is set).
struct TracingSettings {
  std::string otlp_endpoint;   // "IP:port" as written; "" = no export
  sockaddr_storage address{};  // otlp_endpoint, parsed
  std::string service_name = "gateway";
  uint32_t max_queue = 2048;  // spans per worker
  uint32_t batch_size = 512;  // spans per POST
  uint64_t flush_interval_ms = 1000;
  uint64_t export_timeout_ms = 5000;  // connect + write + response of one POST

  bool exporting() const { return !otlp_endpoint.empty(); }
};

// One finished server span. Views are valid for the call that takes it.
struct SpanRecord {
  std::string_view trace_id;        // 32 lowercase hex digits
  std::string_view span_id;         // 16 lowercase hex digits: this hop
  std::string_view parent_span_id;  // 16 hex digits: the caller's span; "" for a root
  std::string_view name;            // the route, else the method
  uint64_t start_unix_ns = 0, end_unix_ns = 0;
  std::string_view method, path;  // path: without the query
  int status = 0;                 // 0: no response was sent
  std::string_view upstream;      // the endpoint ("IP:port") that was tried last, or ""
};

// One span as an OTLP/JSON Span object (kind SERVER, status ERROR on 5xx), appended.
void appendOtlpSpan(const SpanRecord& span, std::string& out);
// A whole ExportTraceServiceRequest around `spans`: Span objects joined by commas.
void appendOtlpRequest(std::string_view service_name, std::string_view spans, std::string& out);

struct TraceExportCounters {
  Counter exported;               // spans the collector accepted (2xx)
  Counter dropped_queue_full;     // spans dropped: the queue was full
  Counter dropped_export_failed;  // spans of batches that failed
  Counter queued;                 // gauge: spans waiting (and in flight)
};

class SpanExporter {
 public:
  // `counters` outlives the exporter.
  SpanExporter(LoopContext& ctx, TraceExportCounters& counters);
  // After close() and the loop's last run.
  ~SpanExporter();
  SpanExporter(const SpanExporter&) = delete;
  SpanExporter& operator=(const SpanExporter&) = delete;

  // Follows `settings` from now on (start and every reload). Another endpoint closes
  // the connection (its batch in flight counts as failed); no export drops the queue.
  void configure(const TracingSettings& settings);
  bool exporting() const { return settings_.exporting() && !closed_; }
  // Queues one span (or drops and counts it).
  void add(const SpanRecord& span);
  // The worker stops: closes the connection (before the loop's last run). What is still
  // queued is dropped without being counted.
  void close();

  size_t queuedSpans() const { return span_ends_.size(); }
  size_t capacityBytes() const { return queue_.capacity(); }

 private:
  struct Connection;
  static void onFlushTimer(void* self);
  static void onTimeout(void* self);
  static void onDeferredFlush(void* self);
  void flush();
  void finishBatch(bool ok);
  void dropConnection();
  void updateGauge();

  LoopContext& ctx_;
  TraceExportCounters& counters_;
  TracingSettings settings_;
  std::string queue_;              // encoded spans, each preceded by ','
  std::vector<size_t> span_ends_;  // the end of each span in queue_
  std::string body_;               // the JSON of the batch being sent
  size_t in_flight_ = 0;           // spans of the batch in flight (the first ones)
  Connection* connection_ = nullptr;
  Timer flush_timer_;
  Timer timeout_timer_;
  bool flush_scheduled_ = false;
  bool closed_ = false;

  friend struct Connection;
};

}  // namespace gw::observe
