#include "gateway/observe/access_log.h"

#include <fcntl.h>
#include <unistd.h>

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
                                            "trace_id"};

// ,"name": for each field, ready to append.
const std::vector<std::string>& jsonKeys() {
  static const std::vector<std::string> kKeys = [] {
    std::vector<std::string> keys;
    for (std::string_view name : kFieldNames) keys.push_back(",\"" + std::string(name) + "\":");
    return keys;
  }();
  return kKeys;
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

// The value of a string field ("" for the others).
std::string_view stringField(const AccessLogEntry& e, AccessLogField field) {
  switch (field) {
    case AccessLogField::RequestId:
      return e.request_id;
    case AccessLogField::Client:
      return e.client;
    case AccessLogField::Method:
      return e.method;
    case AccessLogField::Path:
      return e.path;
    case AccessLogField::Protocol:
      return e.protocol;
    case AccessLogField::Route:
      return e.route;
    case AccessLogField::Service:
      return e.service;
    case AccessLogField::Pool:
      return e.pool;
    case AccessLogField::Endpoint:
      return e.endpoint;
    case AccessLogField::TlsVersion:
      return e.tls_version;
    case AccessLogField::Sni:
      return e.sni;
    case AccessLogField::UserAgent:
      return e.user_agent;
    case AccessLogField::Referer:
      return e.referer;
    case AccessLogField::Host:
      return e.host;
    case AccessLogField::TraceId:
      return e.trace_id;
    default:
      return {};
  }
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
  // A JSON string (at most 6 bytes out per byte in). Eight bytes at a time while none
  // of them needs an escape (a control byte, '"' or '\\'), which is the usual case.
  void putJson(std::string_view s) {
    static const char kHex[] = "0123456789abcdef";
    constexpr uint64_t kOnes = 0x0101010101010101ull;
    constexpr uint64_t kHigh = 0x8080808080808080ull;
    *p_++ = '"';
    const char* in = s.data();
    const char* end = in + s.size();
    while (end - in >= 8) {
      uint64_t x;
      std::memcpy(&x, in, 8);
      uint64_t quote = x ^ (kOnes * '"');
      uint64_t backslash = x ^ (kOnes * '\\');
      uint64_t special = ((x - kOnes * 0x20) & ~x) | ((quote - kOnes) & ~quote) |
                         ((backslash - kOnes) & ~backslash);
      if ((special & kHigh) != 0) break;
      std::memcpy(p_, in, 8);
      p_ += 8;
      in += 8;
    }
    for (; in < end; ++in) {
      auto u = static_cast<unsigned char>(*in);
      if (u >= 0x20 && u != '"' && u != '\\') {
        *p_++ = static_cast<char>(u);
      } else if (u == '"' || u == '\\') {
        p_[0] = '\\';
        p_[1] = static_cast<char>(u);
        p_ += 2;
      } else {
        const char escape[6] = {'\\', 'u', '0', '0', kHex[u >> 4], kHex[u & 15]};
        std::memcpy(p_, escape, 6);
        p_ += 6;
      }
    }
    *p_++ = '"';
  }

 private:
  char* p_;
};

void formatJson(const AccessLogSettings& settings, const AccessLogEntry& e, const timespec& now,
                std::string& out) {
  const std::vector<std::string>& keys = jsonKeys();
  // The most this line can take: each string escaped at 6 bytes per byte, 64 bytes for
  // each key with its number (or the time), and the braces. Counted per listed field, so
  // the bound holds whatever the list holds.
  size_t bound = 4;
  for (AccessLogField field : settings.fields) bound += 64 + 6 * stringField(e, field).size();
  size_t before = out.size();
  out.resize(before + bound);
  LineWriter w(out.data() + before);
  w.put('{');
  bool first = true;
  for (AccessLogField field : settings.fields) {
    std::string_view key = keys[static_cast<size_t>(field)];  // ,"name":
    w.put(first ? key.substr(1) : key);
    first = false;
    switch (field) {
      case AccessLogField::Time: {
        const TimeCache& t = timeFor(now.tv_sec);
        w.put('"');
        w.put(std::string_view(t.iso, t.iso_len));
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
    }
  }
  w.put("}\n");
  out.resize(static_cast<size_t>(w.end() - out.data()));
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

AccessLogWriter::~AccessLogWriter() {
  switchFdIfReady();
  std::string rest = inflight_.substr(inflight_done_) + pending_;
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
  formatAccessLog(settings, entry, now, pending_);
  if (pending_.size() + inflight_.size() > settings.buffer_bytes) {
    pending_.resize(before);  // the disk does not keep up: drop rather than grow
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
