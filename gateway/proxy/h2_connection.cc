#include "gateway/proxy/h2_connection.h"

#include "gateway/proxy/downstream_session.h"
#include "gateway/proxy/exchange.h"
#include "gateway/proxy/messages.h"

namespace gw::proxy {
namespace {

http2::Limits limitsFor(const config::Listener& listener) {
  const config::Http2Settings& h = listener.http2_settings;
  http2::Limits limits;
  limits.max_header_list_bytes = listener.limits.max_header_bytes;
  limits.max_concurrent_streams = h.max_concurrent_streams;
  limits.max_frame_size = h.max_frame_size;
  limits.stream_window = h.stream_window;
  limits.connection_window = h.connection_window;
  limits.window_ms = h.flood_window_ms;
  limits.max_resets = h.max_resets;
  limits.max_control_frames = h.max_control_frames;
  limits.max_empty_frames = h.max_empty_frames;
  limits.max_continuations = h.max_continuations;
  return limits;
}

}  // namespace

// ---------------------------------------------------------------- H2Stream

H2Stream::H2Stream(H2Connection& connection, int32_t id, bool head_request)
    : connection_(connection),
      id_(id),
      response_parser_(HTTP_RESPONSE, this),
      head_request_(head_request) {
  // The exchange's own output: generous limits, it is not from the network.
  response_parser_.setLimits(1024 * 1024, 10'000);
}

const tls::TlsTransport* H2Stream::tls() const { return connection_.session().tls(); }
const config::Listener& H2Stream::listener() const { return connection_.session().listener(); }
const net::SocketAddress& H2Stream::peer() const { return connection_.session().peer(); }

void H2Stream::start(const http::MessageHead& head) {
  ProxyContext& ctx = connection_.ctx();
  ctx.stats().requests.add();
  exchange_ = ctx.acquireExchange(*this);
  int result = exchange_->onRequestHead(head);
  if (result == kReject) {
    rejected();
  } else if (result == kPause) {
    filter_paused_ = true;  // the body waits in held_ until resumeParsing()
  }
}

void H2Stream::rejected() {
  ProxyContext& ctx = connection_.ctx();
  ctx.stats().bad_requests.add();
  if (exchange_->responseStarted()) {
    if (!exchange_->localReply()) abort();
    return;
  }
  exchange_->clientClosed();
  std::string reply;
  int status = fail_status_ != 0 ? fail_status_ : 400;
  LocalReplyExtras extras;
  extras.grpc = exchange_->grpcReply();
  writeLocalReply(status, fail_reason_ != nullptr ? fail_reason_ : "bad request", false,
                  head_request_, extras, reply);
  ctx.stats().local_replies.add();
  ctx.stats().countStatus(status);
  stageCopy(reply.data(), reply.size());
  flush();
  exchange_done_ = true;
}

void H2Stream::giveWindow(size_t length) { connection_.codec().consume(id_, length); }

void H2Stream::onData(const char* data, size_t length) {
  body_bytes_ += length;
  if (exchange_ == nullptr || exchange_done_ || reset_) {
    giveWindow(length);  // discarded
    return;
  }
  if (filter_paused_) {
    held_.append(data, length);
    return;
  }
  deliverBody(data, length);
}

void H2Stream::deliverBody(const char* data, size_t length) {
  if (exchange_->onRequestBody(data, length) == kReject) {
    rejected();
    giveWindow(length);
    return;
  }
  exchange_->flushUpstream();
  // The window reopens only once the upstream took the bytes (resumeReading()).
  if (paused_) {
    unconsumed_ += length;
  } else {
    giveWindow(length);
  }
}

void H2Stream::onRequestEnd() {
  if (filter_paused_) {
    held_end_ = true;
    return;
  }
  deliverEnd();
}

void H2Stream::deliverEnd() {
  if (exchange_ == nullptr || exchange_done_ || reset_) return;
  exchange_->onRequestComplete();
  exchange_->flushUpstream();
}

void H2Stream::onRequestTrailers(const http::MessageHead& trailers) {
  // Only formatted by the exchange (forwarded at the request's end), so this is safe
  // while a filter pauses the request too.
  if (exchange_ == nullptr || exchange_done_ || reset_) return;
  exchange_->onRequestTrailers(trailers);
}

void H2Stream::resumeReading() {
  paused_ = false;
  if (unconsumed_ > 0) {
    giveWindow(unconsumed_);
    unconsumed_ = 0;
  }
}

void H2Stream::resumeParsing() {
  if (!filter_paused_) return;
  filter_paused_ = false;
  std::string held;
  held.swap(held_);
  if (!held.empty()) {
    if (exchange_done_ || reset_) {
      giveWindow(held.size());
    } else {
      deliverBody(held.data(), held.size());
    }
  }
  if (held_end_) deliverEnd();
}

void H2Stream::abort() {
  if (reset_) return;
  reset_ = true;
  connection_.codec().resetStream(id_, NGHTTP2_INTERNAL_ERROR);
}

void H2Stream::onStreamClose(uint32_t) {
  reset_ = true;
  if (exchange_ != nullptr) {
    if (!exchange_done_) exchange_->clientClosed();
    connection_.ctx().releaseExchange(exchange_);
    exchange_ = nullptr;
  }
  // The session forgets this handler when the call returns; nothing else points here.
  delete this;
}

void H2Stream::onStreamDrained() {
  if (exchange_ != nullptr && !exchange_done_) exchange_->onClientDrained();
}

void H2Stream::stageCopy(const char* data, size_t length) {
  if (reset_ || length == 0) return;
  if (response_parser_.feed(data, length) == http::Parser::Outcome::Error) abort();
}

size_t H2Stream::queuedBytes() const { return connection_.codec().bufferedBody(id_); }

void H2Stream::exchangeDone(bool) {
  if (head_staged_) submitStaged();
  exchange_done_ = true;
}

bool H2Stream::flush() {
  if (head_staged_) submitStaged();
  return !reset_;
}

bool H2Stream::discardStaged() {
  if (!head_staged_) return false;
  head_staged_ = staged_end_ = response_head_sent_ = response_has_body_ = false;
  staged_body_.clear();
  trailers_.fields.clear();
  response_parser_.reset();  // the exchange writes its local reply next
  return true;
}

void H2Stream::submitStaged() {
  head_staged_ = false;
  if (reset_) return;
  if (!connection_.codec().submitResponse(id_, staged_head_, !response_has_body_)) {
    abort();
    return;
  }
  if (!staged_body_.empty()) {
    connection_.codec().appendBody(id_, staged_body_.data(), staged_body_.size());
    staged_body_.clear();
  }
  if (staged_end_) {
    staged_end_ = false;
    endResponseBody();
  }
}

int H2Stream::onHead(const http::MessageHead& head) {
  if (head.status < 200) return kContinue;  // 100 Continue: HTTP/2 clients need none
  http2::toResponseFields(head, staged_head_);
  bool no_body = head_request_ || head.status == 204 || head.status == 304 ||
                 (head.has_content_length && head.content_length == 0);
  response_head_sent_ = true;
  response_has_body_ = !no_body;
  head_staged_ = true;
  return head_request_ ? kSkipBody : kContinue;
}

int H2Stream::onBody(const char* data, size_t length) {
  if (head_staged_) {
    staged_body_.append(data, length);
  } else {
    connection_.codec().appendBody(id_, data, length);
  }
  return kContinue;
}

int H2Stream::onTrailers(const http::MessageHead& trailers) {
  // The exchange forwards only trailers that may be (writeTrailerSection).
  if (response_head_sent_ && response_has_body_) http2::toResponseFields(trailers, trailers_);
  return kContinue;
}

bool H2Stream::onMessageComplete() {
  if (!response_head_sent_ || !response_has_body_) return false;
  if (head_staged_) {
    staged_end_ = true;  // ends when the head is submitted
  } else {
    endResponseBody();
  }
  return false;
}

void H2Stream::endResponseBody() {
  if (trailers_.fields.empty()) {
    connection_.codec().endBody(id_);
  } else {
    connection_.codec().endBodyWithTrailers(id_, trailers_);
    trailers_.fields.clear();
  }
}

// ---------------------------------------------------------------- H2Connection

H2Connection::H2Connection(DownstreamSession& session, ProxyContext& ctx, net::Transport& transport)
    : session_(session),
      ctx_(ctx),
      codec_(ctx.loop(), transport, *this, limitsFor(session.listener()), ctx.stats().http2) {}

H2Connection::~H2Connection() = default;

http2::StreamHandler* H2Connection::onRequest(int32_t stream_id, const http::MessageHead& head,
                                              bool) {
  auto* stream = new H2Stream(*this, stream_id, head.method == HTTP_HEAD);
  stream->start(head);
  return stream;
}

void H2Connection::onSessionDone() { session_.closeNow(); }

}  // namespace gw::proxy
