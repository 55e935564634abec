// H2UpstreamStream: one request on an upstream HTTP/2 connection, as the exchange sees
// it (see h2_connection.h); the connection's side is in h2_connection.cc.
#include "gateway/upstream/h2_connection.h"

namespace gw::upstream {

// ---------------------------------------------------------------- H2UpstreamStream

H2UpstreamStream::H2UpstreamStream(LoopContext& ctx, H2UpstreamConnection* connection,
                                   UpstreamUser* user)
    : ctx_(ctx), connection_(connection), user_(user), request_parser_(HTTP_REQUEST, this) {
  link_transport_ = this;
  // The exchange's own output: generous limits, it is not from the network.
  request_parser_.setLimits(1024 * 1024, 10'000);
}

void H2UpstreamStream::stageCopy(const char* data, size_t length) {
  if (detached_ || request_failed_ || length == 0) return;
  if (request_parser_.feed(data, length) == http::Parser::Outcome::Error) request_failed_ = true;
}

bool H2UpstreamStream::flush() {
  if (detached_ || request_failed_ || connection_ == nullptr) return false;
  H2UpstreamConnection& c = *connection_;
  if (!c.ready()) return true;  // submitted once the connection is
  if (id_ == 0 && head_ready_) {
    if (c.going_away_) {
      unprocessed_ = true;  // the server said it takes no new streams
      return false;
    }
    c.submit(this);
    return !request_failed_;
  }
  if (id_ != 0 && deferred_ && (queuedBytes() > 0 || out_end_)) c.resumeData(this);
  return true;
}

int H2UpstreamStream::onHead(const http::MessageHead& head) {
  bool tls = connection_ != nullptr && connection_->tls_ != nullptr;
  http2::toRequestFields(head, tls ? "https" : "http", fields_);
  head_request_ = head.method == HTTP_HEAD;
  head_ready_ = true;
  return kContinue;
}

int H2UpstreamStream::onBody(const char* data, size_t length) {
  out_.append(data, length);
  if (queuedBytes() > net::Transport::kHighWater) over_high_ = true;
  return kContinue;
}

bool H2UpstreamStream::onMessageComplete() {
  out_end_ = true;
  return false;
}

void H2UpstreamStream::startReading() {
  paused_ = false;
  if (held_.empty() || delivery_scheduled_) return;
  // Not from inside the caller's own callback: the held bytes may end the exchange.
  delivery_scheduled_ = true;
  ctx_.defer(
      [](void* self) {
        auto* s = static_cast<H2UpstreamStream*>(self);
        s->delivery_scheduled_ = false;
        s->deliverHeld();
      },
      this);
}

void H2UpstreamStream::deliver(const char* data, size_t length, size_t data_bytes) {
  if (detached_) {
    if (data_bytes > 0 && connection_ != nullptr) connection_->consume(this, data_bytes);
    return;
  }
  if (paused_ || delivering_ || !held_.empty()) {
    held_.append(data, length);
    held_data_ += data_bytes;
    return;
  }
  delivering_ = true;
  user_->onUpstreamRead(data, length);
  delivering_ = false;
  if (data_bytes > 0 && connection_ != nullptr) connection_->consume(this, data_bytes);
}

void H2UpstreamStream::deliverHeld() {
  while (!detached_ && !paused_ && !delivering_ && !held_.empty()) {
    std::string bytes;
    bytes.swap(held_);
    size_t data_bytes = held_data_;
    held_data_ = 0;
    delivering_ = true;
    user_->onUpstreamRead(bytes.data(), bytes.size());
    delivering_ = false;
    if (data_bytes > 0 && connection_ != nullptr) connection_->consume(this, data_bytes);
  }
}

void H2UpstreamStream::fail(int status) {
  // A complete response (perhaps still held for a slow client) is not undone by the
  // connection ending afterwards: the user reads it to the end.
  if (response_ended_) return;
  held_.clear();
  held_data_ = 0;
  if (detached_ || user_ == nullptr) return;
  UpstreamUser* user = user_;
  if (waiting_) {
    waiting_ = false;
    user->onUpstreamConnected(status < 0 ? status : UV_ECONNRESET);
    return;
  }
  user->onUpstreamReadEnd(status < 0 ? status : UV_ECONNRESET);
}

void H2UpstreamStream::detach() {
  if (detached_) return;
  detached_ = true;
  user_ = nullptr;
  waiting_ = false;
  if (connection_ != nullptr) {
    if (held_data_ > 0) connection_->consume(this, held_data_);
    held_data_ = 0;
    if (id_ != 0 && !closed_) {
      // Still open at nghttp2: reset unless both sides ended; freed in onStreamClose.
      if (!(response_ended_ && sent_end_)) connection_->resetStream(this, NGHTTP2_CANCEL);
      held_.clear();
      return;
    }
    connection_->forget(this);
  }
  held_.clear();
  freeLater();
}

void H2UpstreamStream::freeLater() {
  if (free_scheduled_) return;
  free_scheduled_ = true;
  ctx_.defer([](void* self) { delete static_cast<H2UpstreamStream*>(self); }, this);
}

}  // namespace gw::upstream
