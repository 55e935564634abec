#include "gateway/observe/otlp.h"

#include <llhttp.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "gateway/core/log.h"

namespace gw::observe {
namespace {

void appendUint(std::string& out, uint64_t v) {
  char buffer[24];
  char* end = std::to_chars(buffer, buffer + sizeof buffer, v).ptr;
  out.append(buffer, static_cast<size_t>(end - buffer));
}

// A JSON string: runs of bytes that need no escape are appended in one go.
void appendJsonString(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out += '"';
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    auto u = static_cast<unsigned char>(s[i]);
    if (u >= 0x20 && u != '"' && u != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    if (u == '"' || u == '\\') {
      out += '\\';
      out += static_cast<char>(u);
    } else {
      const char escape[6] = {'\\', 'u', '0', '0', kHex[u >> 4], kHex[u & 15]};
      out.append(escape, sizeof escape);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

void appendStringAttribute(std::string& out, std::string_view key, std::string_view value,
                           bool first = false) {
  if (!first) out += ',';
  out += "{\"key\":\"";
  out += key;
  out += "\",\"value\":{\"stringValue\":";
  appendJsonString(out, value);
  out += "}}";
}

constexpr std::string_view kPath = "/v1/traces";

}  // namespace

namespace {

// Writes into space reserved beforehand: literals are fixed-size copies, not calls.
class SpanWriter {
 public:
  explicit SpanWriter(char* p) : p_(p) {}
  char* end() const { return p_; }
  template <size_t N>
  void lit(const char (&text)[N]) {
    std::memcpy(p_, text, N - 1);
    p_ += N - 1;
  }
  void raw(std::string_view s) {
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  void uint(uint64_t v) { p_ = std::to_chars(p_, p_ + 20, v).ptr; }
  void json(std::string_view s) {
    *p_++ = '"';
    p_ = log::putJsonEscaped(p_, s);
    *p_++ = '"';
  }

 private:
  char* p_;
};

}  // namespace

void appendOtlpSpan(const SpanRecord& span, std::string& out) {
  // Fixed text and numbers take under 512 bytes; a string at most 6 bytes per byte.
  size_t bound =
      512 + span.trace_id.size() + span.span_id.size() + span.parent_span_id.size() +
      6 * (span.name.size() + span.method.size() + span.path.size() + span.upstream.size());
  size_t before = out.size();
  out.resize(before + bound);
  SpanWriter w(out.data() + before);
  w.lit("{\"traceId\":\"");
  w.raw(span.trace_id);
  w.lit("\",\"spanId\":\"");
  w.raw(span.span_id);
  if (!span.parent_span_id.empty()) {
    w.lit("\",\"parentSpanId\":\"");
    w.raw(span.parent_span_id);
  }
  w.lit("\",\"name\":");
  w.json(span.name);
  w.lit(",\"kind\":2,\"startTimeUnixNano\":\"");
  w.uint(span.start_unix_ns);
  w.lit("\",\"endTimeUnixNano\":\"");
  w.uint(span.end_unix_ns);
  w.lit("\",\"attributes\":[{\"key\":\"http.request.method\",\"value\":{\"stringValue\":");
  w.json(span.method);
  w.lit("}},{\"key\":\"url.path\",\"value\":{\"stringValue\":");
  w.json(span.path);
  w.lit("}}");
  if (span.status != 0) {
    w.lit(",{\"key\":\"http.response.status_code\",\"value\":{\"intValue\":\"");
    w.uint(static_cast<uint64_t>(span.status));
    w.lit("\"}}");
  }
  if (!span.upstream.empty()) {
    w.lit(",{\"key\":\"server.address\",\"value\":{\"stringValue\":");
    w.json(span.upstream);
    w.lit("}}");
  }
  w.lit("]");
  // Status ERROR (2) on a 5xx or no response at all; otherwise UNSET (the default).
  if (span.status >= 500 || span.status == 0) w.lit(",\"status\":{\"code\":2}");
  w.lit("}");
  out.resize(static_cast<size_t>(w.end() - out.data()));
}

void appendOtlpRequest(std::string_view service_name, std::string_view spans, std::string& out) {
  out += "{\"resourceSpans\":[{\"resource\":{\"attributes\":[";
  appendStringAttribute(out, "service.name", service_name, true);
  out += "]},\"scopeSpans\":[{\"scope\":{\"name\":\"gateway\"},\"spans\":[";
  out += spans;
  out += "]}]}]}";
}

// ---------------------------------------------------------------- the connection

// One TCP connection to the collector. It owns its handle and is freed in the handle's
// close callback; `owner` is cleared when the exporter lets go of it, so a late callback
// reaches nobody.
struct SpanExporter::Connection {
  SpanExporter* owner = nullptr;
  uv_tcp_t tcp{};
  uv_connect_t connect_req{};
  uv_write_t write_req{};
  llhttp_t parser{};
  llhttp_settings_t parser_settings{};
  std::string request;  // the POST being sent (kept until its write completes)
  bool connected = false;
  bool write_pending = false;  // `request` waits for the connect
  bool response_done = false;
  bool closing = false;
  char read_buffer[4096];

  void startClose() {
    if (closing) return;
    closing = true;
    owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp),
             [](uv_handle_t* h) { delete static_cast<Connection*>(h->data); });
  }

  void write() {
    write_pending = false;
    uv_buf_t buf = uv_buf_init(request.data(), static_cast<unsigned>(request.size()));
    int rc = uv_write(&write_req, reinterpret_cast<uv_stream_t*>(&tcp), &buf, 1, &onWrite);
    if (rc < 0 && owner != nullptr) owner->finishBatch(false);
  }

  static int onMessageComplete(llhttp_t* parser) {
    static_cast<Connection*>(parser->data)->response_done = true;
    return HPE_PAUSED;  // one response per request
  }

  static void onConnect(uv_connect_t* req, int status) {
    auto* c = static_cast<Connection*>(req->data);
    if (c->owner == nullptr) return;
    if (status < 0) {
      c->owner->finishBatch(false);
      return;
    }
    c->connected = true;
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&c->tcp),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
          auto* conn = static_cast<Connection*>(h->data);
          *buf = uv_buf_init(conn->read_buffer, sizeof conn->read_buffer);
        },
        &onRead);
    if (c->write_pending) c->write();
  }

  static void onWrite(uv_write_t* req, int status) {
    auto* c = static_cast<Connection*>(req->data);
    if (status < 0 && c->owner != nullptr) c->owner->finishBatch(false);
  }

  static void onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* c = static_cast<Connection*>(stream->data);
    if (c->owner == nullptr) return;
    if (nread < 0) {
      // The collector closed: a response delimited by the close may end here.
      if (c->owner->in_flight_ > 0 && nread == UV_EOF && llhttp_finish(&c->parser) == HPE_OK &&
          c->response_done) {
        c->owner->finishBatch(c->parser.status_code >= 200 && c->parser.status_code < 300);
      } else if (c->owner->in_flight_ > 0) {
        c->owner->finishBatch(false);
      }
      if (c->owner != nullptr) c->owner->dropConnection();
      return;
    }
    if (nread == 0) return;
    if (c->owner->in_flight_ == 0) {  // bytes nobody asked for
      c->owner->dropConnection();
      return;
    }
    llhttp_errno_t err = llhttp_execute(&c->parser, buf->base, static_cast<size_t>(nread));
    if (err == HPE_PAUSED && c->response_done) {
      bool ok = c->parser.status_code >= 200 && c->parser.status_code < 300;
      bool keep_alive = llhttp_should_keep_alive(&c->parser) != 0;
      SpanExporter* owner = c->owner;
      owner->finishBatch(ok);
      if (!keep_alive && owner->connection_ == c) owner->dropConnection();
    } else if (err != HPE_OK) {
      c->owner->finishBatch(false);
    }
  }
};

// ---------------------------------------------------------------- the exporter

SpanExporter::SpanExporter(LoopContext& ctx, TraceExportCounters& counters)
    : ctx_(ctx),
      counters_(counters),
      flush_timer_(this, &SpanExporter::onFlushTimer),
      timeout_timer_(this, &SpanExporter::onTimeout) {}

SpanExporter::~SpanExporter() { dropConnection(); }

void SpanExporter::configure(const TracingSettings& settings) {
  bool same_endpoint = settings.otlp_endpoint == settings_.otlp_endpoint;
  settings_ = settings;
  if (same_endpoint) return;
  if (in_flight_ > 0) finishBatch(false);
  dropConnection();
  if (!settings_.exporting()) {
    queue_.clear();
    span_ends_.clear();
    ctx_.timers().disarm(flush_timer_);
    updateGauge();
  }
}

void SpanExporter::close() {
  closed_ = true;
  dropConnection();
  ctx_.timers().disarm(flush_timer_);
  ctx_.timers().disarm(timeout_timer_);
}

void SpanExporter::add(const SpanRecord& span) {
  if (!exporting()) return;
  if (span_ends_.size() >= settings_.max_queue) {
    counters_.dropped_queue_full.add();
    return;
  }
  queue_ += ',';
  appendOtlpSpan(span, queue_);
  span_ends_.push_back(queue_.size());
  updateGauge();
  if (in_flight_ == 0 && span_ends_.size() >= settings_.batch_size) {
    if (!flush_scheduled_) {
      flush_scheduled_ = true;
      ctx_.defer(&SpanExporter::onDeferredFlush, this);
    }
  } else if (!flush_timer_.armed()) {
    ctx_.timers().arm(flush_timer_, settings_.flush_interval_ms);
  }
}

void SpanExporter::onDeferredFlush(void* self) {
  auto* e = static_cast<SpanExporter*>(self);
  e->flush_scheduled_ = false;
  e->flush();
}

void SpanExporter::onFlushTimer(void* self) { static_cast<SpanExporter*>(self)->flush(); }

void SpanExporter::onTimeout(void* self) {
  auto* e = static_cast<SpanExporter*>(self);
  if (e->in_flight_ == 0) return;
  e->finishBatch(false);  // the collector is too slow: give up on this batch
}

void SpanExporter::flush() {
  if (closed_ || !settings_.exporting() || in_flight_ > 0 || span_ends_.empty()) return;
  ctx_.timers().disarm(flush_timer_);
  if (connection_ == nullptr) {
    auto* c = new Connection();
    c->owner = this;
    c->tcp.data = c;
    c->connect_req.data = c;
    c->write_req.data = c;
    uv_tcp_init(ctx_.loop(), &c->tcp);
    uv_tcp_nodelay(&c->tcp, 1);
    // The connection never keeps a stopping worker alive.
    uv_unref(reinterpret_cast<uv_handle_t*>(&c->tcp));
    connection_ = c;
    int rc = uv_tcp_connect(&c->connect_req, &c->tcp,
                            reinterpret_cast<const sockaddr*>(&settings_.address),
                            &Connection::onConnect);
    if (rc < 0) {
      in_flight_ = std::min<size_t>(settings_.batch_size, span_ends_.size());
      finishBatch(false);
      return;
    }
  }
  Connection& c = *connection_;
  size_t count = std::min<size_t>(settings_.batch_size, span_ends_.size());
  size_t spans_end = span_ends_[count - 1];
  // The spans without the leading comma of the first.
  std::string_view spans(queue_.data() + 1, spans_end - 1);
  body_.clear();
  appendOtlpRequest(settings_.service_name, "", body_);  // the envelope, to measure it
  c.request.clear();
  c.request += "POST ";
  c.request += kPath;
  c.request += " HTTP/1.1\r\nHost: ";
  c.request += settings_.otlp_endpoint;
  c.request += "\r\nContent-Type: application/json\r\nContent-Length: ";
  appendUint(c.request, body_.size() + spans.size());
  c.request += "\r\nUser-Agent: gateway\r\n\r\n";
  appendOtlpRequest(settings_.service_name, spans, c.request);
  llhttp_settings_init(&c.parser_settings);
  c.parser_settings.on_message_complete = &Connection::onMessageComplete;
  llhttp_init(&c.parser, HTTP_RESPONSE, &c.parser_settings);
  c.parser.data = &c;
  c.response_done = false;
  in_flight_ = count;
  ctx_.timers().arm(timeout_timer_, settings_.export_timeout_ms);
  if (c.connected) {
    c.write();
  } else {
    c.write_pending = true;
  }
}

void SpanExporter::finishBatch(bool ok) {
  if (in_flight_ == 0) return;
  size_t count = in_flight_;
  in_flight_ = 0;
  ctx_.timers().disarm(timeout_timer_);
  if (ok) {
    counters_.exported.add(count);
  } else {
    counters_.dropped_export_failed.add(count);
    dropConnection();  // a failed exchange leaves the connection in an unknown state
  }
  size_t end = span_ends_[count - 1];
  queue_.erase(0, end);
  span_ends_.erase(span_ends_.begin(), span_ends_.begin() + static_cast<ptrdiff_t>(count));
  for (size_t& e : span_ends_) e -= end;
  updateGauge();
  if (closed_ || span_ends_.empty()) return;
  if (ok && span_ends_.size() >= settings_.batch_size) {
    if (!flush_scheduled_) {
      flush_scheduled_ = true;
      ctx_.defer(&SpanExporter::onDeferredFlush, this);
    }
  } else if (!flush_timer_.armed()) {
    // After a failure, wait an interval before trying again.
    ctx_.timers().arm(flush_timer_, settings_.flush_interval_ms);
  }
}

void SpanExporter::dropConnection() {
  if (connection_ == nullptr) return;
  Connection* c = connection_;
  connection_ = nullptr;
  c->startClose();
}

void SpanExporter::updateGauge() { counters_.queued.set(span_ends_.size()); }

}  // namespace gw::observe
