#include "gateway/observe/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "gateway/core/log.h"

namespace gw::observe {
namespace {

constexpr std::string_view kFieldNames[] = {"time",
                                            "request_id",
                                            "client",
                                            "method",
                                            "path",
                                            "protocol",
                                            "status",
                                            "bytes_in",
                                            "bytes_out",
                                            "duration_ms",
                                            "upstream_duration_ms",
                                            "route",
                                            "service",
                                            "pool",
                                            "endpoint",
                                            "tls_version",
                                            "sni",
                                            "user_agent",
                                            "referer",
                                            "host",
                                            "trace_id",
                                            "grpc_status"};

// ,"name": for each field, ready to copy: padded to 32 bytes so that a key is written
// with one fixed-size copy (the line's reserved space covers the padding).
struct JsonKey {
  char text[32] = {};
  uint8_t size = 0;
};
constexpr size_t kFieldCount = sizeof kFieldNames / sizeof kFieldNames[0];

const JsonKey* jsonKeys() {
  static const auto kKeys = [] {
    std::array<JsonKey, kFieldCount> keys{};
    for (size_t i = 0; i < kFieldCount; ++i) {
      std::string key = ",\"" + std::string(kFieldNames[i]) + "\":";
      std::memcpy(keys[i].text, key.data(), key.size());
      keys[i].size = static_cast<uint8_t>(key.size());
    }
    return keys;
  }();
  return kKeys.data();
}

// The wall-clock second formatted both ways, cached per thread (one worker per thread):
// formatting happens once a second, not once a request.
struct TimeCache {
  time_t second = -1;
  char iso[24] = {};  // 2026-11-23T07:26:17
  size_t iso_len = 0;
  char clf[32] = {};  // 23/Nov/2026:07:26:17 +0000
  size_t clf_len = 0;
};

const TimeCache& timeFor(time_t second) {
  thread_local TimeCache cache;
  if (cache.second != second) {
    tm utc;
    gmtime_r(&second, &utc);
    cache.iso_len = strftime(cache.iso, sizeof cache.iso, "%Y-%m-%dT%H:%M:%S", &utc);
    cache.clf_len = strftime(cache.clf, sizeof cache.clf, "%d/%b/%Y:%H:%M:%S +0000", &utc);
    cache.second = second;
  }
  return cache;
}

void appendUint(std::string& out, uint64_t v) {
  char buffer[24];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v);
  (void)ec;
  out.append(buffer, static_cast<size_t>(end - buffer));
}

// CLF quoted fields: no raw double quote, backslash or control bytes inside.
void appendClfQuoted(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out += '"';
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\' || u < 0x20 || u == 0x7f) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  out += '"';
}

void appendClfToken(std::string& out, std::string_view s) {
  if (s.empty()) {
    out += '-';
    return;
  }
  for (char c : s) out += static_cast<unsigned char>(c) <= 0x20 ? '_' : c;
}

// Copies n > 0 bytes with a few fixed-size moves (overlapping ones for the tail) rather
// than a call to memcpy: the strings of a log line are short.
[[gnu::always_inline]] inline void copyExact(char* to, const char* from, size_t n) {
  if (n >= 16) {
    for (size_t i = 0; i + 16 <= n; i += 16) std::memcpy(to + i, from + i, 16);
    std::memcpy(to + n - 16, from + n - 16, 16);
  } else if (n >= 8) {
    std::memcpy(to, from, 8);
    std::memcpy(to + n - 8, from + n - 8, 8);
  } else if (n >= 4) {
    std::memcpy(to, from, 4);
    std::memcpy(to + n - 4, from + n - 4, 4);
  } else {
    to[0] = from[0];
    to[n / 2] = from[n / 2];
    to[n - 1] = from[n - 1];
  }
}

// Whether one of the n bytes at `p` needs a JSON escape. Reads up to 15 bytes past them,
// which must be readable (the line's reserved space).
[[gnu::always_inline]] inline bool needsEscape(const char* p, size_t n) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i control = _mm_set1_epi8(0x1f);
  auto mask = [&](const char* at) {
    __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
    __m128i bad = _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash));
    // x <= 0x1f (unsigned) exactly when max(x, 0x1f) == 0x1f.
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(_mm_max_epu8(x, control), control));
    return static_cast<unsigned>(_mm_movemask_epi8(bad));
  };
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    if (mask(p + i) != 0) return true;
  }
  return i < n && (mask(p + i) & ((1u << (n - i)) - 1)) != 0;
#else
  for (size_t i = 0; i < n; ++i) {
    auto u = static_cast<unsigned char>(p[i]);
    if (u < 0x20 || u == '"' || u == '\\') return true;
  }
  return false;
#endif
}

// Writes into memory reserved beforehand (no capacity check per byte).
class LineWriter {
 public:
  explicit LineWriter(char* p) : p_(p) {}
  char* end() const { return p_; }
  void put(char c) { *p_++ = c; }
  void put(std::string_view s) {
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  // `size` bytes of a 24-byte array, copied whole (the reserved space covers it).
  void putFixed(const char (&text)[24], size_t size) {
    std::memcpy(p_, text, sizeof text);
    p_ += size;
  }
  void putUint(uint64_t v) { p_ = std::to_chars(p_, p_ + 20, v).ptr; }
  // Microseconds as milliseconds with three decimals: 1234 -> "1.234".
  void putMs(uint64_t us) {
    putUint(us / 1000);
    p_[0] = '.';
    p_[1] = static_cast<char>('0' + us / 100 % 10);
    p_[2] = static_cast<char>('0' + us / 10 % 10);
    p_[3] = static_cast<char>('0' + us % 10);
    p_ += 4;
  }
  // 32 bytes from `from` (the padded key), advancing by `size`.
  void putKey(const JsonKey& key) {
    std::memcpy(p_, key.text, sizeof key.text);
    p_ += key.size;
  }
  // A JSON string (at most 6 bytes out per byte in). The usual string needs no escape,
  // so it is copied as it is (in whole words, never reading past its end) and then the
  // copy is checked 16 bytes at a time (SSE2, reading the line's reserved space past it);
  // only a string with a byte that needs an escape (a control byte, '"' or '\\') is
  // written again, byte by byte.
  [[gnu::always_inline]] void putJson(std::string_view s) {
    size_t n = s.size();
    *p_++ = '"';
    if (n != 0) {
      copyExact(p_, s.data(), n);
      if (needsEscape(p_, n)) {
        putEscaped(s);
      } else {
        p_ += n;
      }
    }
    *p_++ = '"';
  }

  // Byte by byte, escaping what must be: runs of plain bytes are copied as they come.
  void putEscaped(std::string_view s) { p_ = log::putJsonEscaped(p_, s); }

 private:
  char* p_;
};

// The most a JSON line can take: 64 bytes for each listed field's key with its number
// (or the time; this also leaves the 16 bytes that needsEscape may read past a string),
// every string escaped at 6 bytes per byte (counted even when not listed,
// which is cheaper than finding out), and the braces.
// How often a string may be written: 1, or every field's count when one is listed twice
// (the config refuses that, the API does not).
size_t stringRepeat(const std::vector<AccessLogField>& fields) {
  uint32_t seen = 0;
  for (AccessLogField field : fields) {
    uint32_t bit = 1u << static_cast<unsigned>(field);
    if ((seen & bit) != 0) return fields.size();
    seen |= bit;
  }
  return 1;
}

size_t jsonBound(const AccessLogSettings& settings, const AccessLogEntry& e, size_t repeat) {
  size_t strings = e.request_id.size() + e.client.size() + e.method.size() + e.path.size() +
                   e.protocol.size() + e.route.size() + e.service.size() + e.pool.size() +
                   e.endpoint.size() + e.tls_version.size() + e.sni.size() + e.user_agent.size() +
                   e.referer.size() + e.host.size() + e.trace_id.size();
  return 4 + 64 * settings.fields.size() + 6 * strings * repeat;
}

// Writes the line at `p` (jsonBound bytes reserved) and returns its end.
char* writeJson(const AccessLogSettings& settings, const AccessLogEntry& e, const timespec& now,
                char* p) {
  const JsonKey* keys = jsonKeys();
  LineWriter w(p);
  if (settings.fields.empty()) w.put('{');
  for (AccessLogField field : settings.fields) {
    w.putKey(keys[static_cast<size_t>(field)]);  // ,"name":
    switch (field) {
      case AccessLogField::Time: {
        const TimeCache& t = timeFor(now.tv_sec);
        w.put('"');
        w.putFixed(t.iso, t.iso_len);
        char ms[6] = {'.',
                      static_cast<char>('0' + now.tv_nsec / 100'000'000 % 10),
                      static_cast<char>('0' + now.tv_nsec / 10'000'000 % 10),
                      static_cast<char>('0' + now.tv_nsec / 1'000'000 % 10),
                      'Z',
                      '"'};
        w.put(std::string_view(ms, sizeof ms));
        break;
      }
      case AccessLogField::RequestId:
        w.putJson(e.request_id);
        break;
      case AccessLogField::Client:
        w.putJson(e.client);
        break;
      case AccessLogField::Method:
        w.putJson(e.method);
        break;
      case AccessLogField::Path:
        w.putJson(e.path);
        break;
      case AccessLogField::Protocol:
        w.putJson(e.protocol);
        break;
      case AccessLogField::Status:
        w.putUint(static_cast<uint64_t>(e.status));
        break;
      case AccessLogField::BytesIn:
        w.putUint(e.bytes_in);
        break;
      case AccessLogField::BytesOut:
        w.putUint(e.bytes_out);
        break;
      case AccessLogField::Duration:
        w.putMs(e.duration_us);
        break;
      case AccessLogField::UpstreamDuration:
        if (e.upstream_duration_us < 0) {
          w.put("null");
        } else {
          w.putMs(static_cast<uint64_t>(e.upstream_duration_us));
        }
        break;
      case AccessLogField::Route:
        w.putJson(e.route);
        break;
      case AccessLogField::Service:
        w.putJson(e.service);
        break;
      case AccessLogField::Pool:
        w.putJson(e.pool);
        break;
      case AccessLogField::Endpoint:
        w.putJson(e.endpoint);
        break;
      case AccessLogField::TlsVersion:
        w.putJson(e.tls_version);
        break;
      case AccessLogField::Sni:
        w.putJson(e.sni);
        break;
      case AccessLogField::UserAgent:
        w.putJson(e.user_agent);
        break;
      case AccessLogField::Referer:
        w.putJson(e.referer);
        break;
      case AccessLogField::Host:
        w.putJson(e.host);
        break;
      case AccessLogField::TraceId:
        w.putJson(e.trace_id);
        break;
      case AccessLogField::GrpcStatus:
        if (e.grpc_status < 0) {
          w.put("null");
        } else {
          w.putUint(static_cast<uint64_t>(e.grpc_status));
        }
        break;
    }
  }
  w.put("}\n");
  *p = '{';  // over the first key's comma
  return w.end();
}

void formatJson(const AccessLogSettings& settings, const AccessLogEntry& e, const timespec& now,
                std::string& out) {
  size_t before = out.size();
  out.resize(before + jsonBound(settings, e, stringRepeat(settings.fields)));
  char* end = writeJson(settings, e, now, out.data() + before);
  out.resize(static_cast<size_t>(end - out.data()));
}

// host ident authuser [date] "request" status bytes ["referer" "user-agent"]
void formatClf(bool combined, const AccessLogEntry& e, const timespec& now, std::string& out) {
  appendClfToken(out, e.client);
  out += " - - [";
  const TimeCache& t = timeFor(now.tv_sec);
  out.append(t.clf, t.clf_len);
  out += "] \"";
  appendClfToken(out, e.method);
  out += ' ';
  appendClfToken(out, e.path);
  out += ' ';
  appendClfToken(out, e.protocol);
  out += "\" ";
  if (e.status == 0) {
    out += '-';
  } else {
    appendUint(out, static_cast<uint64_t>(e.status));
  }
  out += ' ';
  appendUint(out, e.bytes_out);
  if (combined) {
    out += ' ';
    if (e.referer.empty()) {
      out += "\"-\"";
    } else {
      appendClfQuoted(out, e.referer);
    }
    out += ' ';
    if (e.user_agent.empty()) {
      out += "\"-\"";
    } else {
      appendClfQuoted(out, e.user_agent);
    }
  }
  out += '\n';
}

}  // namespace

std::string_view accessLogFieldName(AccessLogField field) {
  return kFieldNames[static_cast<size_t>(field)];
}

const std::vector<AccessLogField>& allAccessLogFields() {
  static const std::vector<AccessLogField> kAll = [] {
    std::vector<AccessLogField> all;
    for (size_t i = 0; i < sizeof kFieldNames / sizeof kFieldNames[0]; ++i) {
      all.push_back(static_cast<AccessLogField>(i));
    }
    return all;
  }();
  return kAll;
}

const std::vector<AccessLogField>& defaultAccessLogFields() {
  static const std::vector<AccessLogField> kDefault = [] {
    std::vector<AccessLogField> fields = allAccessLogFields();
    fields.pop_back();  // GrpcStatus, the last
    return fields;
  }();
  return kDefault;
}

std::optional<AccessLogField> accessLogFieldByName(std::string_view name) {
  for (size_t i = 0; i < sizeof kFieldNames / sizeof kFieldNames[0]; ++i) {
    if (kFieldNames[i] == name) return static_cast<AccessLogField>(i);
  }
  return std::nullopt;
}

void formatAccessLog(const AccessLogSettings& settings, const AccessLogEntry& entry,
                     const timespec& now, std::string& out) {
  switch (settings.format) {
    case AccessLogFormat::Json:
      formatJson(settings, entry, now, out);
      return;
    case AccessLogFormat::Common:
      formatClf(false, entry, now, out);
      return;
    case AccessLogFormat::Combined:
      formatClf(true, entry, now, out);
      return;
  }
}

// ---------------------------------------------------------------- the writer

char* LogBuffer::reserve(size_t bytes) {
  if (capacity_ - size_ < bytes) {
    size_t capacity = std::max(capacity_ * 2, size_ + bytes);
    capacity = std::max<size_t>(capacity, 4096);
    auto bigger = std::make_unique<char[]>(capacity);
    if (size_ > 0) std::memcpy(bigger.get(), data_.get(), size_);
    data_ = std::move(bigger);
    capacity_ = capacity;
  }
  return data_.get() + size_;
}

void LogBuffer::append(std::string_view bytes) {
  char* at = reserve(bytes.size());
  std::memcpy(at, bytes.data(), bytes.size());
  commit(at + bytes.size());
}

AccessLogWriter::~AccessLogWriter() {
  switchFdIfReady();
  std::string rest(inflight_.data() + inflight_done_, inflight_.size() - inflight_done_);
  rest.append(pending_.data(), pending_.size());
  size_t done = 0;
  while (fd_ >= 0 && done < rest.size()) {
    ssize_t n = ::write(fd_, rest.data() + done, rest.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  closeFd(fd_);
  closeFd(next_fd_);
}

int AccessLogWriter::openPath(const std::string& path) {
  if (path == "stdout") return STDOUT_FILENO;
  if (path == "stderr") return STDERR_FILENO;
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  return fd >= 0 ? fd : -errno;
}

void AccessLogWriter::closeFd(int fd) {
  if (fd > STDERR_FILENO) ::close(fd);
}

std::string AccessLogWriter::configure(const AccessLogSettings& settings) {
  if (!settings.enabled || (settings.path == path_ && fd_ >= 0)) return "";
  int fd = openPath(settings.path);
  if (fd < 0) return "cannot open access log " + settings.path + ": " + std::strerror(-fd);
  path_ = settings.path;
  if (writing_) {
    closeFd(next_fd_);
    next_fd_ = fd;  // after the write in flight
  } else {
    closeFd(fd_);
    fd_ = fd;
  }
  return "";
}

void AccessLogWriter::reopen() {
  if (path_.empty() || path_ == "stdout" || path_ == "stderr") return;
  if (opening_) {
    reopen_again_ = true;  // a rotation while the last open runs: open once more after
    return;
  }
  opening_ = true;
  open_req_.data = this;
  int rc = uv_fs_open(ctx_.loop(), &open_req_, path_.c_str(),
                      O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644, &AccessLogWriter::onOpen);
  if (rc < 0) {
    opening_ = false;
    log::error("cannot reopen the access log",
               {log::str("path", path_), log::str("error", uv_strerror(rc))});
  }
}

void AccessLogWriter::onOpen(uv_fs_t* req) {
  auto* self = static_cast<AccessLogWriter*>(req->data);
  auto fd = static_cast<int>(req->result);
  uv_fs_req_cleanup(req);
  self->opening_ = false;
  if (fd < 0) {
    log::error("cannot reopen the access log",
               {log::str("path", self->path_), log::str("error", uv_strerror(fd))});
  } else {
    self->closeFd(self->next_fd_);
    self->next_fd_ = fd;
    self->counters_.reopens.add();
    if (!self->writing_) self->switchFdIfReady();
  }
  if (self->reopen_again_) {
    self->reopen_again_ = false;
    self->reopen();
  }
}

void AccessLogWriter::switchFdIfReady() {
  if (next_fd_ < 0) return;
  closeFd(fd_);
  fd_ = next_fd_;
  next_fd_ = -1;
}

void AccessLogWriter::append(const AccessLogSettings& settings, const AccessLogEntry& entry) {
  if (fd_ < 0) return;
  timespec now;
  clock_gettime(CLOCK_REALTIME_COARSE, &now);
  size_t before = pending_.size();
  if (settings.format == AccessLogFormat::Json) {
    if (settings.fields != repeat_fields_) {  // a new field list: compared, not trusted
      repeat_fields_ = settings.fields;
      repeat_ = stringRepeat(repeat_fields_);
    }
    char* at = pending_.reserve(jsonBound(settings, entry, repeat_));
    pending_.commit(writeJson(settings, entry, now, at));
  } else {
    scratch_.clear();
    formatAccessLog(settings, entry, now, scratch_);
    pending_.append(scratch_);
  }
  if (pending_.size() + inflight_.size() > settings.buffer_bytes) {
    pending_.commit(pending_.data() + before);  // the disk does not keep up: drop, not grow
    counters_.dropped.add();
    return;
  }
  counters_.lines.add();
  counters_.buffered_bytes.set(pending_.size() + inflight_.size() - inflight_done_);
  if (!writing_ && !flush_scheduled_) {
    flush_scheduled_ = true;
    ctx_.defer(&AccessLogWriter::onDeferredFlush, this);
  }
}

void AccessLogWriter::onDeferredFlush(void* self) {
  auto* w = static_cast<AccessLogWriter*>(self);
  w->flush_scheduled_ = false;
  w->flush();
}

void AccessLogWriter::flush() {
  if (writing_ || pending_.empty()) return;
  switchFdIfReady();
  inflight_.swap(pending_);
  pending_.clear();
  inflight_done_ = 0;
  writeInflight();
}

void AccessLogWriter::writeInflight() {
  uv_buf_t buf = uv_buf_init(inflight_.data() + inflight_done_,
                             static_cast<unsigned>(inflight_.size() - inflight_done_));
  write_req_.data = this;
  writing_ = true;
  int rc = uv_fs_write(ctx_.loop(), &write_req_, fd_, &buf, 1, -1, &AccessLogWriter::onWrite);
  if (rc < 0) {
    writing_ = false;
    counters_.write_errors.add();
    inflight_.clear();
    inflight_done_ = 0;
  }
}

void AccessLogWriter::onWrite(uv_fs_t* req) {
  auto* self = static_cast<AccessLogWriter*>(req->data);
  ssize_t result = req->result;
  uv_fs_req_cleanup(req);
  self->writing_ = false;
  if (result < 0) {
    self->counters_.write_errors.add();
  } else {
    self->inflight_done_ += static_cast<size_t>(result);
    if (result > 0 && self->inflight_done_ < self->inflight_.size()) {
      self->writeInflight();  // a short write: the rest
      return;
    }
  }
  self->inflight_.clear();
  self->inflight_done_ = 0;
  self->counters_.buffered_bytes.set(self->pending_.size());
  self->switchFdIfReady();
  self->flush();
}

}  // namespace gw::observe
