#include "gateway/upstream/h2_connection.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <cstring>

#include "gateway/core/log.h"
#include "gateway/http/header.h"
#include "gateway/http/wire.h"

namespace gw::upstream {
namespace {

// The exchange's upstream_connect_timeout normally ends a slow handshake first.
constexpr uint64_t kHandshakeTimeoutMs = 30'000;
// Response body a stream may have in flight (held while the exchange does not read).
constexpr uint32_t kStreamWindow = 256 * 1024;
constexpr int32_t kConnectionWindow = 16 * 1024 * 1024;
constexpr size_t kFlushEvery = 256 * 1024;

bool connectionSpecific(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade";
}

}  // namespace

// ---------------------------------------------------------------- H2UpstreamConnection

H2UpstreamConnection::H2UpstreamConnection(LoopContext& ctx, EndpointRuntime& endpoint)
    : ctx_(ctx),
      endpoint_(endpoint),
      tcp_(ctx),
      tls_(makeUpstreamTls(ctx, tcp_, endpoint.tls_.get(), endpoint.tls_name_, true)),
      transport_(tls_ ? static_cast<net::Transport&>(*tls_) : tcp_),
      idle_timer_(this, &onIdleTimeout) {
  transport_.setHandler(this);
}

H2UpstreamConnection::~H2UpstreamConnection() {
  if (session_ != nullptr) nghttp2_session_del(session_);
}

bool H2UpstreamConnection::connect(int& error) {
  endpoint_.open_connections_++;  // until the close callback, however the connect ends
  endpoint_.h2_connections_.push_back(this);
  error = (endpoint_.tls_ != nullptr && tls_ == nullptr)
              ? UV_ENOMEM
              : tcp_.connect(endpoint_.address_, this, &H2UpstreamConnection::onConnected);
  if (error != 0) {
    endpoint_.connect_failures_++;
    failed_ = true;
    closeTransport();
    return false;
  }
  endpoint_.created_++;
  return true;
}

bool H2UpstreamConnection::hasRoom() const {
  if (going_away_ || failed_) return false;
  uint32_t limit = endpoint_.max_streams_;
  if (ready_) {
    limit = std::min(limit, nghttp2_session_get_remote_settings(
                                session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS));
  }
  return streams_.size() < limit;
}

H2UpstreamStream* H2UpstreamConnection::addStream(UpstreamUser* user) {
  auto* s = new H2UpstreamStream(ctx_, this, user);
  s->waiting_ = !ready_;
  streams_.push_back(s);
  ctx_.timers().disarm(idle_timer_);
  return s;
}

void H2UpstreamConnection::drain() {
  going_away_ = true;
  if (!streams_.empty() || failed_) return;  // closes when the last stream ends
  if (session_ != nullptr) {
    nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
    send();
  }
  failed_ = true;
  closeTransport();
}

void H2UpstreamConnection::onConnected(void* self, int status) {
  auto* c = static_cast<H2UpstreamConnection*>(self);
  if (c->failed_) return;
  if (status != 0) {
    c->endpoint_.connect_failures_++;
    c->fail(status);
    return;
  }
  if (c->tls_ != nullptr) {
    c->handshaking_ = true;
    c->tls_->onHandshake(&H2UpstreamConnection::onHandshakeDone, c);
    c->tls_->startHandshake(kHandshakeTimeoutMs);
    return;
  }
  c->startSession();
}

void H2UpstreamConnection::onHandshakeDone(void* self) {
  auto* c = static_cast<H2UpstreamConnection*>(self);
  c->handshaking_ = false;
  if (c->failed_) return;
  if (c->tls_->alpn() != "h2") {
    log::warn("upstream TLS server did not select h2 (ALPN); protocol = \"h2\" needs it",
              {log::str("endpoint", c->endpoint_.key())});
    c->endpoint_.connect_failures_++;
    c->fail(UV_EPROTO);
    return;
  }
  c->startSession();
}

void H2UpstreamConnection::startSession() {
  nghttp2_session_callbacks* cb = nullptr;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &H2UpstreamConnection::onFrameRecv);
  nghttp2_session_callbacks_set_on_header_callback(cb, &H2UpstreamConnection::onHeader);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &H2UpstreamConnection::onDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &H2UpstreamConnection::onStreamClose);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  // Response windows open only as the exchanges take the bytes (consume()).
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_session_client_new2(&session_, cb, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings,
                          sizeof settings / sizeof settings[0]);
  nghttp2_submit_window_update(session_, NGHTTP2_FLAG_NONE, 0,
                               kConnectionWindow - NGHTTP2_INITIAL_WINDOW_SIZE);
  transport_.startReading();
  send();
}

void H2UpstreamConnection::onRead(const char* data, size_t length) {
  if (failed_ || session_ == nullptr) return;
  in_recv_ = true;
  ssize_t n = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(data), length);
  in_recv_ = false;
  if (n < 0) {
    log::warn("upstream HTTP/2 protocol error",
              {log::str("endpoint", endpoint_.key()), log::str("error", nghttp2_strerror(int(n)))});
    nghttp2_session_terminate_session(session_, NGHTTP2_PROTOCOL_ERROR);
    send();
    fail(UV_EPROTO);
    return;
  }
  if (announce_) {
    announce_ = false;
    announceReady();
  }
  send();
}

void H2UpstreamConnection::announceReady() {
  std::vector<H2UpstreamStream*> waiting;
  for (H2UpstreamStream* s : streams_) {
    if (s->waiting_) waiting.push_back(s);
  }
  for (H2UpstreamStream* s : waiting) {
    if (!s->waiting_ || s->detached_) continue;
    s->waiting_ = false;
    s->user_->onUpstreamConnected(0);
  }
}

void H2UpstreamConnection::onReadEnd(int status) {
  if (handshaking_) {  // the TLS handshake failed: a failed connect
    handshaking_ = false;
    endpoint_.connect_failures_++;
    fail(status < 0 && status != UV_EOF ? status : UV_EPROTO);
    return;
  }
  fail(status < 0 && status != UV_EOF ? status : UV_ECONNRESET);
}

void H2UpstreamConnection::onWriteError(int status) { fail(status < 0 ? status : UV_EPIPE); }

void H2UpstreamConnection::fail(int status) {
  if (failed_) return;
  failed_ = true;
  ready_ = false;
  going_away_ = true;
  ctx_.timers().disarm(idle_timer_);
  std::vector<H2UpstreamStream*> streams;
  streams.swap(streams_);
  for (H2UpstreamStream* s : streams) {
    s->connection_ = nullptr;
    s->closed_ = true;
    if (s->id_ == 0) s->unprocessed_ = true;  // never sent: safe to retry
  }
  closeTransport();
  for (H2UpstreamStream* s : streams) {
    if (s->detached_) {
      s->freeLater();
    } else {
      s->fail(status);  // the user closes it, which frees it
    }
  }
}

void H2UpstreamConnection::closeTransport() {
  auto& list = endpoint_.h2_connections_;
  list.erase(std::remove(list.begin(), list.end(), this), list.end());
  ctx_.timers().disarm(idle_timer_);
  transport_.close();
}

void H2UpstreamConnection::onClosed() {
  endpoint_.open_connections_--;
  auto& list = endpoint_.h2_connections_;
  list.erase(std::remove(list.begin(), list.end(), this), list.end());
  if (!failed_) fail(UV_ECONNRESET);
  // A deferred send or TLS delivery must run (and see the connection closed) first.
  if (send_scheduled_ || (tls_ != nullptr && tls_->deferredPending())) {
    ctx_.defer([](void* self) { delete static_cast<H2UpstreamConnection*>(self); }, this);
    return;
  }
  delete this;
}

void H2UpstreamConnection::onIdleTimeout(void* self) {
  auto* c = static_cast<H2UpstreamConnection*>(self);
  if (c->streams_.empty()) c->drain();
}

void H2UpstreamConnection::updateIdle() {
  if (failed_ || !streams_.empty()) return;
  // No idle connections are kept (draining, or the endpoint left every pool).
  if (endpoint_.idle_timeout_ms_ == 0) going_away_ = true;
  if (going_away_) {
    if (session_ == nullptr) {  // still connecting: nothing to say to the server
      failed_ = true;
      closeTransport();
      return;
    }
    scheduleSend();  // send() closes a going-away connection without streams
    return;
  }
  ctx_.timers().arm(idle_timer_, endpoint_.idle_timeout_ms_);
}

H2UpstreamStream* H2UpstreamConnection::find(int32_t id) const {
  return static_cast<H2UpstreamStream*>(nghttp2_session_get_stream_user_data(session_, id));
}

void H2UpstreamConnection::submit(H2UpstreamStream* s) {
  std::vector<nghttp2_nv> nv;
  const http2::RequestFields& f = s->fields_;
  nv.reserve(f.fields.size());
  for (size_t i = 0; i < f.fields.size(); ++i) {
    std::string_view name = f.name(i);
    std::string_view value = f.value(i);
    nv.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                  reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                  value.size(), NGHTTP2_NV_FLAG_NONE});
  }
  bool no_body = s->out_end_ && s->queuedBytes() == 0;
  nghttp2_data_provider provider;
  provider.source.ptr = s;
  provider.read_callback = &H2UpstreamConnection::readBody;
  // nghttp2 copies the names and values.
  int32_t id = nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(),
                                      no_body ? nullptr : &provider, s);
  if (id < 0) {
    s->request_failed_ = true;
    return;
  }
  s->id_ = id;
  s->sent_end_ = no_body;
  scheduleSend();
}

void H2UpstreamConnection::resumeData(H2UpstreamStream* s) {
  s->deferred_ = false;
  nghttp2_session_resume_data(session_, s->id_);
  scheduleSend();
}

void H2UpstreamConnection::resetStream(H2UpstreamStream* s, uint32_t error_code) {
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s->id_, error_code);
  scheduleSend();
}

void H2UpstreamConnection::consume(H2UpstreamStream* s, size_t length) {
  if (failed_ || session_ == nullptr || length == 0) return;
  // Always opens the connection's window; the stream's too while nghttp2 has it.
  if (s->id_ != 0) {
    nghttp2_session_consume(session_, s->id_, length);
  } else {
    nghttp2_session_consume_connection(session_, length);
  }
  scheduleSend();
}

void H2UpstreamConnection::forget(H2UpstreamStream* s) {
  s->connection_ = nullptr;
  streams_.erase(std::remove(streams_.begin(), streams_.end(), s), streams_.end());
  updateIdle();
}

void H2UpstreamConnection::scheduleSend() {
  if (send_scheduled_ || failed_) return;
  send_scheduled_ = true;
  ctx_.defer(&H2UpstreamConnection::onDeferredSend, this);
}

void H2UpstreamConnection::onDeferredSend(void* self) {
  auto* c = static_cast<H2UpstreamConnection*>(self);
  c->send_scheduled_ = false;
  c->send();
}

void H2UpstreamConnection::send() {
  if (failed_ || sending_ || in_recv_ || session_ == nullptr) return;
  sending_ = true;
  size_t staged = 0;
  bool broken = false;
  while (!transport_.overHighWater()) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      broken = true;
      break;
    }
    if (n == 0) break;
    // nghttp2's buffer is reused by the next call: copy (stageCopy coalesces).
    transport_.stageCopy(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    staged += static_cast<size_t>(n);
    if (staged >= kFlushEvery) {
      staged = 0;
      if (!transport_.flush()) {
        broken = true;
        break;
      }
    }
  }
  if (!broken && !transport_.flush()) broken = true;
  sending_ = false;
  if (broken) {
    fail(UV_EPIPE);
    return;
  }
  std::vector<H2UpstreamStream*> drained;
  drained.swap(drained_);
  for (H2UpstreamStream* s : drained) {
    // Alive: streams are freed by deferred tasks, never during this call.
    if (!s->detached_ && s->user_ != nullptr && !s->waiting_) s->user_->onUpstreamDrained();
  }
  if (failed_) return;
  bool idle = nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0;
  if (idle || (going_away_ && streams_.empty() && nghttp2_session_want_write(session_) == 0)) {
    if (!streams_.empty()) {
      fail(UV_ECONNRESET);
    } else {
      failed_ = true;
      closeTransport();
    }
  }
}

// ---------------------------------------------------------------- nghttp2 callbacks

int H2UpstreamConnection::onHeader(nghttp2_session*, const nghttp2_frame* frame,
                                   const uint8_t* name, size_t name_length, const uint8_t* value,
                                   size_t value_length, uint8_t, void* self) {
  auto* c = static_cast<H2UpstreamConnection*>(self);
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  H2UpstreamStream* s = c->find(frame->hd.stream_id);
  if (s == nullptr) return 0;
  std::string_view n(reinterpret_cast<const char*>(name), name_length);
  std::string_view v(reinterpret_cast<const char*>(value), value_length);
  if (s->final_head_) {  // trailers
    if (!n.empty() && n[0] != ':') http::appendField(s->trailers_, n, v);
    return 0;
  }
  if (n == ":status") {
    int status = 0;
    std::from_chars(v.data(), v.data() + v.size(), status);
    s->status_ = status;
    return 0;
  }
  if (n.empty() || n[0] == ':' || connectionSpecific(n)) return 0;
  if (n == "content-length") s->has_length_ = true;
  http::appendField(s->scratch_, n, v);
  return 0;
}

int H2UpstreamConnection::onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* self) {
  auto* c = static_cast<H2UpstreamConnection*>(self);
  switch (frame->hd.type) {
    case NGHTTP2_SETTINGS:
      if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0 && !c->ready_ && !c->failed_) {
        c->ready_ = true;  // the server's limits are known now
        c->announce_ = true;
      }
      return 0;
    case NGHTTP2_GOAWAY:
      // Streams above last_stream_id are closed by nghttp2 with REFUSED_STREAM.
      c->going_away_ = true;
      return 0;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
      break;
    default:
      return 0;
  }
  H2UpstreamStream* s = c->find(frame->hd.stream_id);
  if (s == nullptr) return 0;
  bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (frame->hd.type == NGHTTP2_DATA) {
    if (end && !s->response_ended_) {
      s->response_ended_ = true;
      if (s->chunked_) s->deliver("0\r\n\r\n", 5, 0);
    }
    return 0;
  }
  if (s->final_head_) {  // trailers (always END_STREAM)
    if (!s->response_ended_) {
      s->response_ended_ = true;
      if (s->chunked_) {
        std::string last = "0\r\n" + s->trailers_ + "\r\n";
        s->deliver(last.data(), last.size(), 0);
      }
    }
    return 0;
  }
  int status = s->status_;
  std::string head = "HTTP/1.1 ";
  head += std::to_string(status);
  head += " \r\n";  // no reason phrase in HTTP/2: the exchange fills in the standard one
  if (status < 200) {
    head += s->scratch_;
    head += "\r\n";
    s->scratch_.clear();
    s->status_ = 0;
    s->has_length_ = false;
    s->deliver(head.data(), head.size(), 0);
    return 0;
  }
  s->final_head_ = true;
  head += s->scratch_;
  s->scratch_.clear();
  bool no_body = s->head_request_ || status == 204 || status == 304;
  if (!no_body && !s->has_length_) {
    if (end) {
      head += "content-length: 0\r\n";
    } else {
      head += "transfer-encoding: chunked\r\n";
      s->chunked_ = true;
    }
  }
  head += "\r\n";
  if (end) s->response_ended_ = true;
  s->deliver(head.data(), head.size(), 0);
  return 0;
}

int H2UpstreamConnection::onDataChunk(nghttp2_session*, uint8_t, int32_t stream_id,
                                      const uint8_t* data, size_t length, void* self) {
  auto* c = static_cast<H2UpstreamConnection*>(self);
  H2UpstreamStream* s = c->find(stream_id);
  if (s == nullptr || s->detached_) {
    nghttp2_session_consume(c->session_, stream_id, length);  // nobody wants it
    c->scheduleSend();
    return 0;
  }
  if (!s->chunked_) {
    s->deliver(reinterpret_cast<const char*>(data), length, length);
    return 0;
  }
  std::string& chunk = s->scratch_;
  chunk.clear();
  char header[http::kChunkHeaderMax];
  chunk.append(header, http::chunkHeader(header, length));
  chunk.append(reinterpret_cast<const char*>(data), length);
  chunk.append("\r\n");
  s->deliver(chunk.data(), chunk.size(), length);
  return 0;
}

int H2UpstreamConnection::onStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                                        void* self) {
  auto* c = static_cast<H2UpstreamConnection*>(self);
  H2UpstreamStream* s = c->find(stream_id);
  if (s == nullptr) return 0;
  nghttp2_session_set_stream_user_data(c->session_, stream_id, nullptr);
  s->closed_ = true;
  // Held response bytes are delivered later without the stream: open the connection's
  // window for them now.
  if (s->held_data_ > 0) nghttp2_session_consume_connection(c->session_, s->held_data_);
  s->held_data_ = 0;
  c->forget(s);
  if (s->detached_) {
    s->freeLater();
    return 0;
  }
  if (!s->response_ended_) {
    if (error_code == NGHTTP2_REFUSED_STREAM) s->unprocessed_ = true;
    s->fail(UV_ECONNRESET);
  }
  return 0;
}

ssize_t H2UpstreamConnection::readBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                                       uint32_t* flags, nghttp2_data_source* source, void* self) {
  auto* c = static_cast<H2UpstreamConnection*>(self);
  auto* s = static_cast<H2UpstreamStream*>(source->ptr);
  size_t n = std::min(length, s->queuedBytes());
  if (n > 0) std::memcpy(buf, s->out_.data() + s->out_sent_, n);
  s->out_sent_ += n;
  if (s->out_sent_ == s->out_.size()) {
    s->out_.clear();
    s->out_sent_ = 0;
  } else if (s->out_sent_ > 64 * 1024 && s->out_sent_ * 2 > s->out_.size()) {
    s->out_.erase(0, s->out_sent_);  // keep the buffer from growing at its head
    s->out_sent_ = 0;
  }
  if (s->over_high_ && s->queuedBytes() <= net::Transport::kLowWater) {
    s->over_high_ = false;
    c->drained_.push_back(s);
  }
  if (s->queuedBytes() == 0) {
    if (s->out_end_) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      s->sent_end_ = true;
      return static_cast<ssize_t>(n);
    }
    if (n == 0) {
      s->deferred_ = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return static_cast<ssize_t>(n);
}

// ---------------------------------------------------------------- EndpointRuntime (HTTP/2)

UpstreamLink* EndpointRuntime::takeH2Stream(UpstreamUser* user) {
  for (H2UpstreamConnection* c : h2_connections_) {
    if (c->ready() && c->hasRoom()) return c->addStream(user);
  }
  return nullptr;
}

UpstreamLink* EndpointRuntime::connectH2(UpstreamUser* user, int& error) {
  error = 0;
  for (H2UpstreamConnection* c : h2_connections_) {
    if (!c->ready() && c->hasRoom()) return c->addStream(user);  // joins its connect
  }
  auto* c = new H2UpstreamConnection(ctx_, *this);
  if (!c->connect(error)) return nullptr;  // frees itself in the close callback
  return c->addStream(user);
}

void EndpointRuntime::closeIdleH2() {
  std::vector<H2UpstreamConnection*> connections = h2_connections_;
  for (H2UpstreamConnection* c : connections) c->drain();
}

}  // namespace gw::upstream
