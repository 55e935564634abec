#pragma once
// Access logs: one line per request, JSON (a configurable field list) or the Common /
// Combined Log Format, written off the request path.
//
// Each worker owns one AccessLogWriter. The exchange formats its line into the writer's
// buffer when it ends (a few hundred bytes of appends, no allocation once warm); the
// loop writes the buffer with uv_fs_write (libuv's thread pool, so a slow disk never
// blocks the loop), at most one write in flight, everything appended meanwhile goes in
// the next one. The buffer is bounded: when it is full a line is dropped and counted.
// reopen() (SIGUSR1, for logrotate) opens the path again; the old descriptor is closed
// once no write uses it.
//
// Loop-confined, except the counters, which the control thread reads.

#include <uv.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/counter.h"
#include "gateway/core/loop_context.h"

namespace gw::observe {

enum class AccessLogFormat { Json, Common, Combined };

enum class AccessLogField : uint8_t {
  Time,
  RequestId,
  Client,
  Method,
  Path,
  Protocol,
  Status,
  BytesIn,
  BytesOut,
  Duration,
  UpstreamDuration,
  Route,
  Service,
  Pool,
  Endpoint,
  TlsVersion,
  Sni,
  UserAgent,
  Referer,
  Host,
  TraceId,
  GrpcStatus,  // not in the default list (opt-in)
};

// The JSON key of a field ("duration_ms"); every name, in the order above.
std::string_view accessLogFieldName(AccessLogField field);
const std::vector<AccessLogField>& allAccessLogFields();
// What the JSON format writes when no `fields` are configured: every field but the
// opt-in ones (grpc_status).
const std::vector<AccessLogField>& defaultAccessLogFields();
std::optional<AccessLogField> accessLogFieldByName(std::string_view name);

struct AccessLogSettings {
  bool enabled = false;
  std::string path = "stdout";  // "stdout", "stderr" or a file (appended to)
  AccessLogFormat format = AccessLogFormat::Json;
  std::vector<AccessLogField> fields = defaultAccessLogFields();  // JSON only
  uint64_t buffer_bytes = 1024 * 1024;  // per worker; lines over it are dropped
};

// One request, as the exchange saw it. Views are valid for the call to append().
struct AccessLogEntry {
  std::string_view request_id, client, method, path, protocol;
  int status = 0;        // 0: no response was sent (the client went away first)
  int grpc_status = -1;  // the grpc-status of a gRPC local reply; -1: none (null)
  uint64_t bytes_in = 0, bytes_out = 0;
  uint64_t duration_us = 0;
  int64_t upstream_duration_us = -1;  // -1: no upstream was tried
  std::string_view route, service, pool, endpoint;
  std::string_view tls_version, sni, user_agent, referer, host, trace_id;
};

// The line for `entry` (with its '\n'), appended to `out`. `now` is the wall clock.
void formatAccessLog(const AccessLogSettings& settings, const AccessLogEntry& entry,
                     const timespec& now, std::string& out);

// A writer's counters: one writer (its loop), read by other threads (relaxed).
struct AccessLogCounters {
  Counter lines;           // lines buffered
  Counter dropped;         // lines dropped: the buffer was full
  Counter write_errors;    // failed writes (their bytes are lost)
  Counter reopens;         // completed reopens
  Counter buffered_bytes;  // gauge: waiting or being written now
};

// A byte buffer that grows without zero-filling what it reserves (a std::string's resize
// would write every reserved byte once more per line).
class LogBuffer {
 public:
  const char* data() const { return data_.get(); }
  char* data() { return data_.get(); }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  void clear() { size_ = 0; }
  // Room for `bytes` more at the end; returns where they go. Commit what was written.
  char* reserve(size_t bytes);
  void commit(char* end) { size_ = static_cast<size_t>(end - data_.get()); }
  void append(std::string_view bytes);
  void swap(LogBuffer& other) noexcept {
    data_.swap(other.data_);
    std::swap(size_, other.size_);
    std::swap(capacity_, other.capacity_);
  }

 private:
  std::unique_ptr<char[]> data_;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

class AccessLogWriter {
 public:
  // `counters` outlives the writer.
  AccessLogWriter(LoopContext& ctx, AccessLogCounters& counters) : ctx_(ctx), counters_(counters) {}
  // Writes what is still buffered (blocking: the loop has ended) and closes the file.
  ~AccessLogWriter();
  AccessLogWriter(const AccessLogWriter&) = delete;
  AccessLogWriter& operator=(const AccessLogWriter&) = delete;

  // Uses `settings.path` from now on (opened at once, blocking, when it changed: at
  // start and on a reload that names another file). Returns "" or an error.
  std::string configure(const AccessLogSettings& settings);
  // Opens the path again (asynchronously); lines keep going to the old file until the
  // new one is open. For logrotate's rename + SIGUSR1.
  void reopen();
  // Formats and buffers one line; schedules a write.
  void append(const AccessLogSettings& settings, const AccessLogEntry& entry);

  bool open() const { return fd_ >= 0; }
  // Bytes of buffer capacity held (for /debug/memory).
  size_t capacityBytes() const { return pending_.capacity() + inflight_.capacity(); }

 private:
  static void onDeferredFlush(void* self);
  static void onWrite(uv_fs_t* req);
  static void onOpen(uv_fs_t* req);
  void flush();
  void writeInflight();
  void switchFdIfReady();
  static int openPath(const std::string& path);  // blocking; -errno on failure
  void closeFd(int fd);

  LoopContext& ctx_;
  AccessLogCounters& counters_;
  std::string path_;
  int fd_ = -1;
  int next_fd_ = -1;  // opened by reopen(), used once no write is in flight
  LogBuffer pending_;
  LogBuffer inflight_;
  std::string scratch_;
  // The last field list seen and how often a string may appear in its lines.
  std::vector<AccessLogField> repeat_fields_;
  size_t repeat_ = 1;  // a Common/Combined line before it is copied in
  size_t inflight_done_ = 0;
  uv_fs_t write_req_{};
  uv_fs_t open_req_{};
  bool writing_ = false;
  bool opening_ = false;
  bool reopen_again_ = false;
  bool flush_scheduled_ = false;
};

}  // namespace gw::observe
