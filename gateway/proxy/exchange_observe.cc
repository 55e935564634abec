// The exchange's metrics and access log line (see WorkerStats and gateway/observe). On
// the request path this is a few stores and indexed counter adds; the access log line is
// formatted into the worker's buffer and written by the loop later.
#include <uv.h>

#include <ctime>

#include "gateway/http/header.h"
#include "gateway/proxy/downstream_session.h"
#include "gateway/proxy/exchange.h"

namespace gw::proxy {
namespace {

// The trace-id of a W3C traceparent ("00-<32 hex>-<16 hex>-<2 hex>"), or "".
std::string_view traceId(std::string_view traceparent) {
  traceparent = http::trimOws(traceparent);
  if (traceparent.size() < 55 || traceparent[2] != '-' || traceparent[35] != '-') return {};
  std::string_view id = traceparent.substr(3, 32);
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return {};
  }
  if (id.find_first_not_of('0') == std::string_view::npos) return {};  // all zero: invalid
  return id;
}

// The pool part of a PoolRuntime name ("service/pool").
std::string_view poolName(const upstream::PoolRuntime* pool) {
  if (pool == nullptr) return {};
  std::string_view name = pool->name();
  size_t slash = name.find('/');
  return slash == std::string_view::npos ? name : name.substr(slash + 1);
}

}  // namespace

void Exchange::observeRequestHead(const http::MessageHead& head) {
  const config::Snapshot& snapshot = pinned_->get();
  head_seen_ = true;
  logged_ = snapshot.access_log.enabled && ctx_.accessLog().open();
  traced_ = snapshot.tracing.exporting() && ctx_.spanExporter().exporting();
  timed_ = snapshot.metrics.enabled || logged_ || traced_;
  if (timed_) start_ns_ = uv_hrtime();
  if (!logged_ && !traced_) return;
  log_method_ = llhttp_method_name(static_cast<llhttp_method_t>(head.method));
  log_minor_ = head.http_minor;
  head_text_.clear();
  log_target_ = keepText(head.url);
  log_host_ = log_user_agent_ = log_referer_ = log_request_id_ = log_trace_id_ = TextRef{};
  if (!logged_) return;
  // bytes_in: the head as it would be written ("NAME: value\r\n" per field), plus body.
  uint64_t head_bytes = std::char_traits<char>::length(log_method_) + 1 + head.url.size() + 11 + 2;
  for (size_t i = 0; i < head.header_count; ++i) {
    std::string_view name = head.name(i);
    std::string_view value = head.value(i);
    head_bytes += name.size() + value.size() + 4;
    if (name.size() < 4) continue;
    switch (name[0] | 0x20) {
      case 'h':
        if (log_host_.size == 0 && http::equalsIgnoreCase(name, "host")) {
          log_host_ = keepText(value);
        }
        break;
      case 'u':
        if (http::equalsIgnoreCase(name, "user-agent")) log_user_agent_ = keepText(value);
        break;
      case 'r':
        if (http::equalsIgnoreCase(name, "referer")) log_referer_ = keepText(value);
        break;
      case 'x':
        if (log_request_id_.size == 0 && http::equalsIgnoreCase(name, "x-request-id")) {
          log_request_id_ = keepText(value);
        }
        break;
      case 't':
        if (log_trace_id_.size == 0 && http::equalsIgnoreCase(name, "traceparent")) {
          log_trace_id_ = keepText(traceId(value));
        }
        break;
      default:
        break;
    }
  }
  bytes_in_ += head_bytes;
}

void Exchange::exportSpan(uint64_t total_us) {
  if (!chain_.active()) return;
  std::string_view traceparent = chain_.context().traceparent;
  // "00-" trace id "-" span id "-" flags: only sampled traces (flags bit 0) are exported.
  if (traceparent.size() != 55 || (traceparent[54] & 1) == 0) return;
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  uint64_t end_ns =
      static_cast<uint64_t>(now.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(now.tv_nsec);
  observe::SpanRecord span;
  span.trace_id = traceparent.substr(3, 32);
  span.span_id = traceparent.substr(36, 16);
  span.parent_span_id = chain_.context().parent_span_id;
  span.method = log_method_;
  span.name = route_ != nullptr ? std::string_view(route_->name) : span.method;
  span.end_unix_ns = end_ns;
  span.start_unix_ns = end_ns - total_us * 1000;
  std::string_view target = text(log_target_);
  span.path = target.substr(0, target.find('?'));
  span.status = status_;
  if (endpoint_ != nullptr) span.upstream = endpoint_->key();
  ctx_.spanExporter().add(span);
}

void Exchange::recordEnd() {
  WorkerStats& stats = ctx_.stats();
  stats.bytes_sent.add(bytes_out_);
  if (!timed_) return;
  // When the upstream's response ended, so did the exchange's work (what is left is
  // bookkeeping in the same loop iteration): one clock read fewer per request.
  uint64_t end = upstream_end_ns_ != 0 ? upstream_end_ns_ : uv_hrtime();
  uint64_t total_us = (end - start_ns_) / 1000;
  int64_t upstream_us = -1;
  if (upstream_start_ns_ != 0) {
    upstream_us = static_cast<int64_t>((end - upstream_start_ns_) / 1000);
  }
  const config::Snapshot& snapshot = pinned_->get();
  if (snapshot.metrics.enabled) {
    size_t total_bucket = observe::DurationHistogram::bucketFor(total_us);
    size_t upstream_bucket =
        upstream_us >= 0 ? observe::DurationHistogram::bucketFor(static_cast<uint64_t>(upstream_us))
                         : 0;
    uint16_t route_slot = route_ != nullptr ? route_->stats_slot : 0;
    if (route_slot != 0) {
      if (status_ != 0) stats.route_responses[route_slot][statusClass(status_)].add();
      stats.route_duration[route_slot].observeIn(total_bucket, total_us);
      if (upstream_us >= 0) {
        stats.route_upstream_duration[route_slot].observeIn(upstream_bucket,
                                                            static_cast<uint64_t>(upstream_us));
      }
    }
    if (pool_slot_ != 0) {
      if (status_ != 0) stats.pool_responses[pool_slot_][statusClass(status_)].add();
      stats.pool_duration[pool_slot_].observeIn(total_bucket, total_us);
      if (upstream_us >= 0) {
        stats.pool_upstream_duration[pool_slot_].observeIn(upstream_bucket,
                                                           static_cast<uint64_t>(upstream_us));
      }
    }
  }
  if (traced_) exportSpan(total_us);
  if (!logged_) return;
  observe::AccessLogEntry e;
  e.request_id = chain_.active() && !chain_.context().request_id.empty()
                     ? std::string_view(chain_.context().request_id)
                     : text(log_request_id_);
  e.client = peerIp();
  e.method = log_method_;
  e.path = text(log_target_);
  e.protocol = session_->protocolName(log_minor_);
  e.status = status_;
  e.grpc_status = grpc_status_;
  e.bytes_in = bytes_in_;
  e.bytes_out = bytes_out_;
  e.duration_us = total_us;
  e.upstream_duration_us = upstream_us;
  if (route_ != nullptr) {
    e.route = route_->name;
    e.service = route_->service;
  }
  e.pool = poolName(pool_);
  if (endpoint_ != nullptr) e.endpoint = endpoint_->key();
  if (const tls::TlsTransport* tls = session_->tls()) {
    e.tls_version = tls->protocolVersion();
    e.sni = tls->serverName();
  }
  e.user_agent = text(log_user_agent_);
  e.referer = text(log_referer_);
  e.host = text(log_host_);
  e.trace_id = text(log_trace_id_);
  ctx_.accessLog().append(snapshot.access_log, e);
}

}  // namespace gw::proxy
