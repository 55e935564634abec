#include "gateway/http2/session.h"

#include <algorithm>
#include <cstring>

#include "gateway/core/log.h"

namespace gw::http2 {

struct Session::Stream {
  int32_t id = 0;
  StreamHandler* handler = nullptr;
  RequestHeadBuilder head;
  // Request trailer fields (copied; only a request that has some fills these).
  std::string trailer_bytes;
  std::vector<http::HeaderSpan> trailer_spans;
  uint64_t trailer_list_size = 0;
  // Response trailers, sent as HEADERS after the last DATA.
  ResponseFields trailers;
  bool has_trailers = false;
  std::string out;  // response body not yet taken by nghttp2: [out_sent, size)
  size_t out_sent = 0;
  bool out_end = false;
  bool deferred = false;   // the data provider returned NGHTTP2_ERR_DEFERRED
  bool over_high = false;  // the body passed the high-water mark; tell when it drains
  bool rejected = false;   // reset by us before the head was complete
  bool request_ended = false;
  bool response_ended = false;
  size_t pending() const { return out.size() - out_sent; }
};

namespace {

constexpr size_t kFlushEvery = 256 * 1024;  // staged bytes per writev while sending

}  // namespace

Session::Session(LoopContext& loop, net::Transport& transport, SessionHandler& handler,
                 const Limits& limits, Http2Counters& counters)
    : loop_(loop), transport_(transport), handler_(handler), limits_(limits), counters_(counters) {
  nghttp2_session_callbacks* cb = nullptr;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &Session::onBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cb, &Session::onHeader);
  nghttp2_session_callbacks_set_on_begin_frame_callback(cb, &Session::onBeginFrame);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &Session::onFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &Session::onDataChunk);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, &Session::onFrameSend);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &Session::onStreamClose);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  // Request body windows open only as the upstream takes the bytes (consume()).
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
  nghttp2_option_set_max_continuations(opt, limits_.max_continuations);
  nghttp2_session_server_new2(&session_, cb, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
}

Session::~Session() {
  closeAllStreams();
  nghttp2_session_del(session_);
}

void Session::start(const char* data, size_t length) {
  counters_.connections.add();
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, limits_.stream_window},
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, limits_.max_frame_size},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, limits_.max_header_list_bytes},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings,
                          sizeof settings / sizeof settings[0]);
  int32_t grow = static_cast<int32_t>(limits_.connection_window) - NGHTTP2_INITIAL_WINDOW_SIZE;
  if (grow > 0) nghttp2_submit_window_update(session_, NGHTTP2_FLAG_NONE, 0, grow);
  onRead(data, length);
}

void Session::onRead(const char* data, size_t length) {
  if (closed_) return;
  if (!terminated_ && length > 0) {
    ssize_t n = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(data), length);
    if (n < 0 && !terminated_) {
      uint32_t code = NGHTTP2_ENHANCE_YOUR_CALM;
      if (n == NGHTTP2_ERR_FLOODED) {
        counters_.control_flood.add();  // nghttp2's own queue limit (unread PING/SETTINGS ACKs)
      } else if (n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS) {
        counters_.continuation_flood.add();  // nghttp2's own cap (max_continuations)
      } else {
        counters_.protocol_errors.add();
        code = NGHTTP2_PROTOCOL_ERROR;
      }
      // A fatal error: say why if nghttp2 has not queued a GOAWAY yet, send it, then close.
      terminate(code);
    }
  }
  send();
}

Session::Stream* Session::find(int32_t stream_id) const {
  return static_cast<Stream*>(nghttp2_session_get_stream_user_data(session_, stream_id));
}

bool Session::submitResponse(int32_t stream_id, const ResponseFields& fields, bool end_stream) {
  Stream* s = find(stream_id);
  if (s == nullptr || closed_) return false;
  std::vector<nghttp2_nv> nv;
  nv.reserve(fields.fields.size() + 1);
  auto add = [&](std::string_view name, std::string_view value) {
    nv.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                  reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                  value.size(), NGHTTP2_NV_FLAG_NONE});
  };
  add(":status", std::string_view(fields.status, 3));
  for (size_t i = 0; i < fields.fields.size(); ++i) add(fields.name(i), fields.value(i));
  nghttp2_data_provider provider;
  provider.source.ptr = s;
  provider.read_callback = &Session::readBody;
  s->out_end = end_stream;
  // nghttp2 copies the names and values.
  int rv = nghttp2_submit_response(session_, stream_id, nv.data(), nv.size(),
                                   end_stream ? nullptr : &provider);
  scheduleSend();
  return rv == 0;
}

void Session::appendBody(int32_t stream_id, const char* data, size_t length) {
  Stream* s = find(stream_id);
  if (s == nullptr || closed_ || length == 0) return;
  s->out.append(data, length);
  if (s->pending() > net::Transport::kHighWater) s->over_high = true;
  if (s->deferred) {
    s->deferred = false;
    nghttp2_session_resume_data(session_, stream_id);
  }
  scheduleSend();
}

void Session::endBody(int32_t stream_id) {
  Stream* s = find(stream_id);
  if (s == nullptr || closed_ || s->out_end) return;
  s->out_end = true;
  if (s->deferred) {
    s->deferred = false;
    nghttp2_session_resume_data(session_, stream_id);
  }
  scheduleSend();
}

void Session::endBodyWithTrailers(int32_t stream_id, const ResponseFields& trailers) {
  Stream* s = find(stream_id);
  if (s == nullptr || closed_ || s->out_end) return;
  s->trailers = trailers;
  s->has_trailers = !trailers.fields.empty();
  endBody(stream_id);
}

size_t Session::bufferedBody(int32_t stream_id) const {
  Stream* s = find(stream_id);
  return s == nullptr ? 0 : s->pending();
}

void Session::resetStream(int32_t stream_id, uint32_t error_code) {
  if (closed_) return;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, error_code);
  scheduleSend();
}

void Session::consume(int32_t stream_id, size_t length) {
  if (closed_ || length == 0) return;
  if (nghttp2_session_consume(session_, stream_id, length) != 0) {
    nghttp2_session_consume_connection(session_, length);  // the stream is gone
  }
  scheduleSend();
}

void Session::shutdown() {
  if (closed_ || shutting_down_) return;
  shutting_down_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  scheduleSend();
}

void Session::terminate(uint32_t error_code) {
  if (terminated_) return;
  terminated_ = true;
  nghttp2_session_terminate_session(session_, error_code);
}

bool Session::overRate(RateWindow& w, uint32_t max, Counter& counter) {
  uint64_t now = uv_now(loop_.loop());
  if (now - w.start_ms >= limits_.window_ms) {
    w.start_ms = now;
    w.count = 0;
  }
  if (++w.count <= max) return false;
  if (!terminated_) counter.add();
  terminate(NGHTTP2_ENHANCE_YOUR_CALM);
  return true;
}

void Session::scheduleSend() {
  if (send_scheduled_ || sending_ || closed_) return;
  send_scheduled_ = true;
  loop_.defer(&Session::onDeferredSend, this);
}

void Session::onDeferredSend(void* self) {
  auto* s = static_cast<Session*>(self);
  s->send_scheduled_ = false;
  s->send();
}

void Session::send() {
  if (closed_ || sending_) return;
  sending_ = true;
  size_t staged = 0;
  bool failed = false;
  while (!transport_.overHighWater()) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      failed = true;
      break;
    }
    if (n == 0) break;
    // nghttp2's buffer is reused by the next call: copy (stageCopy coalesces).
    transport_.stageCopy(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    staged += static_cast<size_t>(n);
    bytes_sent_ += static_cast<uint64_t>(n);
    if (staged >= kFlushEvery) {
      if (!transport_.flush()) failed = true;
      staged = 0;
      if (failed) break;
    }
  }
  if (!failed && !transport_.flush()) failed = true;
  sending_ = false;
  std::vector<int32_t> drained;
  drained.swap(drained_);
  for (int32_t id : drained) {
    if (Stream* s = find(id); s != nullptr && s->handler != nullptr) s->handler->onStreamDrained();
  }
  bool idle = nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0;
  if (terminated_ && nghttp2_session_want_write(session_) == 0) idle = true;
  if (shutting_down_ && streams_.empty() && nghttp2_session_want_write(session_) == 0) idle = true;
  if ((failed || idle) && !done_reported_ && !closed_) {
    done_reported_ = true;
    handler_.onSessionDone();
  }
}

bool Session::stalled() {
  bool waiting = transport_.queuedBytes() > 0;
  for (auto it = streams_.begin(); !waiting && it != streams_.end(); ++it) {
    waiting = (*it)->pending() > 0;
  }
  bool stalled = waiting && bytes_sent_ == sent_at_check_;
  sent_at_check_ = bytes_sent_;
  return stalled;
}

void Session::closeStream(Stream* s, uint32_t error_code) {
  streams_.erase(s);
  StreamHandler* handler = s->handler;
  s->handler = nullptr;
  if (!closed_) nghttp2_session_set_stream_user_data(session_, s->id, nullptr);
  if (handler != nullptr) handler->onStreamClose(error_code);
  delete s;
}

void Session::closeAllStreams() {
  closed_ = true;
  while (!streams_.empty()) closeStream(*streams_.begin(), NGHTTP2_CANCEL);
}

// ---------------------------------------------------------------- nghttp2 callbacks

int Session::onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* self) {
  auto* s = static_cast<Session*>(self);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  auto* stream = new Stream;
  stream->id = frame->hd.stream_id;
  s->streams_.insert(stream);
  nghttp2_session_set_stream_user_data(s->session_, stream->id, stream);
  return 0;
}

int Session::onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t name_length, const uint8_t* value, size_t value_length, uint8_t,
                      void* self) {
  auto* s = static_cast<Session*>(self);
  if (s->terminated_) return 0;
  Stream* stream = s->find(frame->hd.stream_id);
  if (stream == nullptr || stream->rejected) return 0;
  if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
    // Trailers (nghttp2 has checked the names, no pseudo-fields, END_STREAM): kept for
    // onRequestTrailers, within the same header list limit as the head.
    stream->trailer_list_size += name_length + value_length + 32;
    if (stream->trailer_list_size > s->limits_.max_header_list_bytes) {
      s->counters_.header_list_too_large.add();
      stream->rejected = true;
      nghttp2_submit_rst_stream(s->session_, NGHTTP2_FLAG_NONE, stream->id,
                                NGHTTP2_ENHANCE_YOUR_CALM);
      return 0;
    }
    http::HeaderSpan span;
    span.name = {static_cast<uint32_t>(stream->trailer_bytes.size()),
                 static_cast<uint32_t>(name_length)};
    stream->trailer_bytes.append(reinterpret_cast<const char*>(name), name_length);
    span.value = {static_cast<uint32_t>(stream->trailer_bytes.size()),
                  static_cast<uint32_t>(value_length)};
    stream->trailer_bytes.append(reinterpret_cast<const char*>(value), value_length);
    stream->trailer_spans.push_back(span);
    return 0;
  }
  const char* problem =
      stream->head.add(std::string_view(reinterpret_cast<const char*>(name), name_length),
                       std::string_view(reinterpret_cast<const char*>(value), value_length));
  if (stream->head.listSize() > s->limits_.max_header_list_bytes) {
    // Also bounds what an HPACK "bomb" (small indexed references to a big table entry)
    // may decode into.
    s->counters_.header_list_too_large.add();
    stream->rejected = true;
    nghttp2_submit_rst_stream(s->session_, NGHTTP2_FLAG_NONE, stream->id,
                              NGHTTP2_ENHANCE_YOUR_CALM);
    return 0;
  }
  if (problem != nullptr) {
    stream->rejected = true;
    nghttp2_submit_rst_stream(s->session_, NGHTTP2_FLAG_NONE, stream->id, NGHTTP2_PROTOCOL_ERROR);
  }
  return 0;
}

int Session::onBeginFrame(nghttp2_session*, const nghttp2_frame_hd* hd, void* self) {
  auto* s = static_cast<Session*>(self);
  if (s->terminated_) return 0;
  switch (hd->type) {
    case NGHTTP2_HEADERS:
      s->continuations_ = 0;
      if (hd->length == 0 && (hd->flags & NGHTTP2_FLAG_END_HEADERS) == 0) {
        s->overRate(s->empty_, s->limits_.max_empty_frames, s->counters_.empty_frame_flood);
      }
      break;
    case NGHTTP2_CONTINUATION:
      if (++s->continuations_ > s->limits_.max_continuations) {
        if (!s->terminated_) s->counters_.continuation_flood.add();
        s->terminate(NGHTTP2_ENHANCE_YOUR_CALM);
      } else if (hd->length == 0) {
        s->overRate(s->empty_, s->limits_.max_empty_frames, s->counters_.empty_frame_flood);
      }
      break;
    case NGHTTP2_DATA:
      if (hd->length == 0 && (hd->flags & NGHTTP2_FLAG_END_STREAM) == 0) {
        s->overRate(s->empty_, s->limits_.max_empty_frames, s->counters_.empty_frame_flood);
      }
      break;
    case NGHTTP2_SETTINGS:
    case NGHTTP2_PING:
      if ((hd->flags & NGHTTP2_FLAG_ACK) == 0) {
        s->overRate(s->control_, s->limits_.max_control_frames, s->counters_.control_flood);
      }
      break;
    default:
      break;
  }
  return 0;
}

int Session::onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* self) {
  auto* s = static_cast<Session*>(self);
  if (s->terminated_) return 0;
  int32_t id = frame->hd.stream_id;
  switch (frame->hd.type) {
    case NGHTTP2_RST_STREAM:
      s->counters_.client_resets.add();
      s->overRate(s->resets_, s->limits_.max_resets, s->counters_.rapid_reset);
      return 0;
    case NGHTTP2_HEADERS: {
      Stream* stream = s->find(id);
      if (stream == nullptr) return 0;
      bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
      if (frame->headers.cat == NGHTTP2_HCAT_REQUEST && !stream->rejected) {
        if (const char* problem = stream->head.finish(end)) {
          (void)problem;
          stream->rejected = true;
          nghttp2_submit_rst_stream(s->session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_PROTOCOL_ERROR);
          return 0;
        }
        s->counters_.streams.add();
        stream->handler = s->handler_.onRequest(id, stream->head.head(), end);
        if (stream->handler == nullptr) {
          stream->rejected = true;
          nghttp2_submit_rst_stream(s->session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
          return 0;
        }
      }
      stream = s->find(id);  // the handler may have reset it
      if (end && stream != nullptr && stream->handler != nullptr && !stream->request_ended &&
          !stream->trailer_spans.empty() && !stream->rejected) {
        http::MessageHead trailers;
        trailers.base = stream->trailer_bytes.data();
        trailers.spans = stream->trailer_spans.data();
        trailers.header_count = stream->trailer_spans.size();
        stream->handler->onRequestTrailers(trailers);
        stream = s->find(id);
      }
      if (end && stream != nullptr && stream->handler != nullptr && !stream->request_ended) {
        stream->request_ended = true;
        stream->handler->onRequestEnd();
      }
      return 0;
    }
    case NGHTTP2_DATA: {
      Stream* stream = s->find(id);
      if (stream == nullptr || stream->handler == nullptr) return 0;
      if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0 && !stream->request_ended) {
        stream->request_ended = true;
        stream->handler->onRequestEnd();
      }
      return 0;
    }
    default:
      return 0;
  }
}

int Session::onDataChunk(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                         size_t length, void* self) {
  auto* s = static_cast<Session*>(self);
  Stream* stream = s->find(stream_id);
  if (stream == nullptr || stream->handler == nullptr || s->terminated_) {
    s->consume(stream_id, length);  // nobody wants it: give the window back
    return 0;
  }
  stream->handler->onData(reinterpret_cast<const char*>(data), length);
  return 0;
}

int Session::onFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* self) {
  auto* s = static_cast<Session*>(self);
  switch (frame->hd.type) {
    case NGHTTP2_GOAWAY:
      s->counters_.goaway_sent.add();
      break;
    case NGHTTP2_RST_STREAM:
      // Malformed requests are counted here, whether our checks (fields.h) or nghttp2's
      // own (RFC 9113 §8.1.1 content-length, field validity) found them.
      if (frame->rst_stream.error_code == NGHTTP2_REFUSED_STREAM)
        s->counters_.refused_streams.add();
      if (frame->rst_stream.error_code == NGHTTP2_PROTOCOL_ERROR) {
        s->counters_.malformed_requests.add();
      }
      break;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
      if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
        Stream* stream = s->find(frame->hd.stream_id);
        if (stream != nullptr && !stream->request_ended) {
          // The response is complete before the request (a local reply to a request
          // with a body): stop the rest of the upload (RFC 9113 §8.1).
          nghttp2_submit_rst_stream(s->session_, NGHTTP2_FLAG_NONE, stream->id, NGHTTP2_NO_ERROR);
        }
      }
      break;
    default:
      break;
  }
  return 0;
}

int Session::onStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* self) {
  auto* s = static_cast<Session*>(self);
  if (Stream* stream = s->find(stream_id)) s->closeStream(stream, error_code);
  return 0;
}

ssize_t Session::readBody(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source* source, void* self) {
  auto* s = static_cast<Session*>(self);
  auto* stream = static_cast<Stream*>(source->ptr);
  size_t n = std::min(length, stream->pending());
  if (n > 0) std::memcpy(buf, stream->out.data() + stream->out_sent, n);
  stream->out_sent += n;
  if (stream->out_sent == stream->out.size()) {
    stream->out.clear();
    stream->out_sent = 0;
  } else if (stream->out_sent > 64 * 1024 && stream->out_sent * 2 > stream->out.size()) {
    stream->out.erase(0, stream->out_sent);  // keep the buffer from growing at its head
    stream->out_sent = 0;
  }
  if (stream->over_high && stream->pending() <= net::Transport::kLowWater) {
    stream->over_high = false;
    s->drained_.push_back(stream_id);
  }
  if (stream->pending() == 0) {
    if (stream->out_end) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      stream->response_ended = true;
      if (stream->has_trailers) {
        stream->has_trailers = false;
        const ResponseFields& t = stream->trailers;
        std::vector<nghttp2_nv> nv;
        nv.reserve(t.fields.size());
        for (size_t i = 0; i < t.fields.size(); ++i) {
          std::string_view name = t.name(i), value = t.value(i);
          nv.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                        reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                        value.size(), NGHTTP2_NV_FLAG_NONE});
        }
        // nghttp2 copies the fields; the trailers' HEADERS carries END_STREAM.
        if (nghttp2_submit_trailer(s->session_, stream_id, nv.data(), nv.size()) == 0) {
          *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
      }
      return static_cast<ssize_t>(n);
    }
    if (n == 0) {
      stream->deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return static_cast<ssize_t>(n);
}

}  // namespace gw::http2
