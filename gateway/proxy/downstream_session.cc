#include "gateway/proxy/downstream_session.h"

#include <algorithm>
#include <cstring>

#include "gateway/proxy/exchange.h"
#include "gateway/proxy/h2_connection.h"
#include "gateway/proxy/messages.h"

namespace gw::proxy {
namespace {

std::unique_ptr<tls::TlsTransport> makeTls(ProxyContext& ctx, net::TcpTransport& tcp,
                                           const config::Listener& listener) {
  if (listener.tls == nullptr) return nullptr;
  SSL* ssl = listener.tls->newConnection();
  if (ssl == nullptr) return nullptr;  // out of memory: start() refuses the connection
  return std::make_unique<tls::TlsTransport>(ctx.loop(), tcp, ssl, &ctx.stats().tls);
}

// How long a connection we are closing keeps reading (and discarding) so that the
// client reads our last response before the kernel could answer its bytes with RST.
constexpr uint64_t kLingerMs = 2'000;
}  // namespace

DownstreamSession::DownstreamSession(ProxyContext& ctx, PinnedSnapshot* pinned,
                                     const config::Listener& listener)
    : pinned_(pinned),
      listener_(&listener),
      tcp_(ctx.loop()),
      tls_(makeTls(ctx, tcp_, listener)),
      timer_(this, &DownstreamSession::onTimer) {
  transport().setHandler(this);
  ctx.addSession(this);
}

// An idle keep-alive connection costs this object (one slab slot) and the kernel's
// socket: keep it well under 512 bytes (uv_tcp_t alone is 248).
static_assert(sizeof(DownstreamSession) <= 456, "an idle connection grew");

void DownstreamSession::start(uv_stream_t* server) {
  if (tcp_.accept(server) != 0 || (listener_->tls != nullptr && tls_ == nullptr)) {
    closeNow();
    return;
  }
  started_ = true;
  ctx().stats().connections_accepted.add();
  ctx().stats().connections_active.add();
  peer_ = tcp_.peerAddress();
  timer_kind_ = TimerKind::Header;
  ctx().loop().timers().arm(timer_, listener_->limits.header_read_timeout_ms);
  if (tls_) tls_->startHandshake(listener_->tls->settings().handshake_timeout_ms);
  transport().startReading();
}

void DownstreamSession::onRead(const char* data, size_t length) {
  ctx().stats().bytes_received.add(length);
  switch (state_) {
    case State::Lingering:
    case State::Closed:
      return;
    case State::Tunnel:
      exchange_->tunnelFromClient(data, length);
      return;
    case State::Http2:
      // Any frame counts as activity; the idle timer closes only a connection without
      // open streams (onTimer).
      ctx().loop().timers().arm(timer_, listener_->limits.idle_timeout_ms);
      h2_->onRead(data, length);
      return;
    case State::Waiting:
    case State::Reading:
      break;
  }
  if (first_read_) {
    first_read_ = false;
    if (listener_->http2 && wantsHttp2(data, length)) {
      enterHttp2(data, length);
      return;
    }
  }
  if (timer_kind_ == TimerKind::Idle) {
    // The first bytes of a new request: the header-read clock starts.
    timer_kind_ = TimerKind::Header;
    ctx().loop().timers().arm(timer_, listener_->limits.header_read_timeout_ms);
  }
  if (parser_ == nullptr) parser_ = ctx().acquireParser(this, listener_->limits);
  handleOutcome(parser_->feed(data, length));
  flushAll();
}

bool DownstreamSession::wantsHttp2(const char* data, size_t length) const {
  if (tls_ && tls_->alpn() == "h2") return true;
  // Prior knowledge (h2c): "PRI " cannot start an HTTP/1 request we would serve.
  size_t n = std::min(length, sizeof kH2Preface - 1);
  return n >= 4 && std::memcmp(data, kH2Preface, n) == 0;
}

void DownstreamSession::enterHttp2(const char* data, size_t length) {
  state_ = State::Http2;
  timer_kind_ = TimerKind::Idle;
  ctx().loop().timers().arm(timer_, listener_->limits.idle_timeout_ms);
  h2_ = std::make_unique<H2Connection>(*this, ctx(), transport());
  h2_->start(data, length);
  if (draining_) h2_->drain();
}

void DownstreamSession::handleOutcome(http::Parser::Outcome outcome) {
  using Outcome = http::Parser::Outcome;
  switch (outcome) {
    case Outcome::NeedMore:
      if (parser_->inHead()) {
        if (timer_kind_ != TimerKind::Header) {
          timer_kind_ = TimerKind::Header;
          ctx().loop().timers().arm(timer_, listener_->limits.header_read_timeout_ms);
        }
      } else if (exchange_ != nullptr && parser_->messageOpen()) {
        // Reading a request body: the idle timeout bounds a stalled upload.
        timer_kind_ = TimerKind::Body;
        ctx().loop().timers().arm(timer_, listener_->limits.idle_timeout_ms);
      } else if (exchange_ == nullptr && parserIdle()) {
        becomeIdle();
      }
      return;
    case Outcome::Paused:
    case Outcome::Upgraded:
      // A whole request is in; its exchange owns the connection until the response is
      // done. Pipelined bytes wait unparsed in the parser. Reading goes on (stopping and
      // restarting would cost two epoll_ctl calls per request) unless a client pipelines
      // more than a head's worth ahead.
      if (state_ == State::Reading) state_ = State::Waiting;
      if (parser_->pendingInputSize() > listener_->limits.max_header_bytes)
        transport().stopReading();
      if (timer_kind_ != TimerKind::None) {
        timer_kind_ = TimerKind::None;
        ctx().loop().timers().disarm(timer_);
      }
      return;
    case Outcome::Error: {
      ctx().stats().bad_requests.add();
      if (exchange_ != nullptr && exchange_->responseStarted()) {
        // Already answered: closing after it, or now if its body was being discarded.
        if (exchange_->localReply()) {
          if (exchange_->discardingBody()) lingeringClose();
          return;
        }
        abort();
        return;
      }
      if (exchange_ != nullptr) exchange_->clientClosed();  // the upstream gets nothing more
      replyAndClose(parser_->errorStatus(), parser_->errorReason());
      return;
    }
  }
}

void DownstreamSession::replyAndClose(int status, const char* message) {
  std::string reply;
  LocalReplyExtras extras;
  if (exchange_ != nullptr) extras.grpc = exchange_->grpcReply();
  writeLocalReply(status, message != nullptr ? message : "bad request", true, false, extras, reply);
  ctx().stats().local_replies.add();
  ctx().stats().countStatus(status);
  // A request refused before its exchange began has no one else to log it.
  if (exchange_ == nullptr) logLocalReply(status, reply.size());
  transport().stageCopy(reply);
  transport().flush();
  lingeringClose();
}

void DownstreamSession::logLocalReply(int status, size_t bytes_out) {
  const config::Snapshot& snapshot = pinned_->get();
  if (!snapshot.access_log.enabled || !ctx().accessLog().open()) return;
  // Off the hot path (a refused request): the address text may allocate.
  std::string client;
  peer_.appendIp(client);
  observe::AccessLogEntry e;  // what the request did not get to say stays empty
  e.client = client;
  e.status = status;
  e.bytes_out = bytes_out;
  if (const tls::TlsTransport* tls = tls_.get()) {
    e.tls_version = tls->protocolVersion();
    e.sni = tls->serverName();
  }
  ctx().accessLog().append(snapshot.access_log, e);
}

void DownstreamSession::lingeringClose() {
  if (state_ == State::Closed || state_ == State::Lingering) return;
  state_ = State::Lingering;
  transport().flush();
  transport().shutdownWrite();
  transport().startReading();
  timer_kind_ = TimerKind::Linger;
  ctx().loop().timers().arm(timer_, kLingerMs);
}

void DownstreamSession::endAfterResponse() {
  if (state_ == State::Closed || state_ == State::Lingering) return;
  // As nginx's lingering_close heuristic: when the whole request was read, nothing more
  // arrived and the response has left in full, the client has nothing in flight that a
  // close could answer with a reset, so close at once (FIN; on TLS, close_notify goes in
  // the response's write).
  // That saves the shutdown, the read of the client's FIN and two epoll_ctl calls per
  // connection. Otherwise linger, so that unread input does not reset the response.
  bool request_done =
      parser_ == nullptr || (!parser_->messageOpen() && !parser_->hasPendingInput());
  if (request_done && transport().flushAndClose()) {
    closeNow();
    return;
  }
  lingeringClose();
}

void DownstreamSession::releaseParser() {
  if (parser_ == nullptr) return;
  ctx().releaseParser(parser_);
  parser_ = nullptr;
}

void DownstreamSession::becomeIdle() {
  releaseParser();
  repinIfStale();
  timer_kind_ = TimerKind::Idle;
  ctx().loop().timers().arm(timer_, listener_->limits.idle_timeout_ms);
}

void DownstreamSession::flushAll() {
  if (exchange_ != nullptr) exchange_->flushUpstream();
  if (state_ != State::Closed && !flushResponse()) closeNow();
}

bool DownstreamSession::flushResponse() {
  // A response that ends the connection leaves with the close, in this turn's check
  // phase (endAfterResponse), so that on TLS it and close_notify share one write. Only
  // where stage() copies: TCP keeps pointers that are not valid that long.
  bool ending = continuation_pending_ && !keep_alive_next_ && transport().stageCopies() &&
                (state_ == State::Reading || state_ == State::Waiting);
  return ending || transport().flush();
}

void DownstreamSession::exchangeDone(bool keep_alive) {
  keep_alive_next_ = keep_alive && !close_after_;
  if (!continuation_pending_) {
    continuation_pending_ = true;
    ctx().loop().defer(&DownstreamSession::continueAfterExchange, this);
  }
}

void DownstreamSession::continueAfterExchange(void* self) {
  auto* s = static_cast<DownstreamSession*>(self);
  s->continuation_pending_ = false;
  if (s->state_ == State::Closed || s->state_ == State::Tunnel) return;
  if (s->exchange_ != nullptr) {
    s->ctx().releaseExchange(s->exchange_);
    s->exchange_ = nullptr;
  }
  // close_after_ may have come after exchangeDone(): the client's FIN (or the drain)
  // arrived in the same turn as the response's end. Keeping such a connection would
  // leave it idle with its EOF already consumed (on TLS, never read again).
  if (!s->keep_alive_next_ || s->close_after_) {
    s->endAfterResponse();
    return;
  }
  if (s->state_ == State::Lingering) return;
  s->state_ = State::Reading;
  if (s->parser_ != nullptr && (s->parser_->hasPendingInput() || !s->parser_->idle())) {
    s->handleOutcome(s->parser_->resume());
    s->flushAll();
  }
  if (s->state_ == State::Reading) {
    if (!s->paused_for_backpressure_) s->transport().startReading();
    if (s->exchange_ == nullptr && s->parserIdle()) s->becomeIdle();
  }
}

void DownstreamSession::abort() {
  // A body sent until the close (to an HTTP/1.0 client) has no framing to show that it
  // was cut short: a FIN would make it look whole, so it ends with a reset instead.
  closeNow(exchange_ != nullptr && exchange_->responseUntilClose());
}

void DownstreamSession::pauseReading() {
  paused_for_backpressure_ = true;
  transport().stopReading();
}

void DownstreamSession::resumeReading() {
  if (!paused_for_backpressure_) return;
  paused_for_backpressure_ = false;
  if (state_ == State::Reading || state_ == State::Tunnel) transport().startReading();
}

void DownstreamSession::resumeParsing() {
  if (state_ != State::Waiting) return;  // closing, or the exchange already ended it
  state_ = State::Reading;
  handleOutcome(parser_->resume());
  if (client_eof_ && state_ == State::Reading && parser_ != nullptr && parser_->messageOpen()) {
    closeNow();  // the client left before its request was whole
    return;
  }
  flushAll();
  if (state_ == State::Reading && !paused_for_backpressure_) transport().startReading();
}

void DownstreamSession::enterTunnel() {
  state_ = State::Tunnel;
  timer_kind_ = TimerKind::None;
  ctx().loop().timers().disarm(timer_);
  if (parser_->hasPendingInput()) {
    std::string_view rest = parser_->pendingInput();
    exchange_->tunnelFromClient(rest.data(), rest.size());
  }
  releaseParser();  // the tunnel parses nothing more
  if (!paused_for_backpressure_) transport().startReading();
}

bool DownstreamSession::startDrain(uint64_t spread_ms) {
  if (draining_) return false;
  draining_ = true;
  drain_start_ms_ = static_cast<uint32_t>(uv_now(ctx().loop().loop()));
  drain_spread_ms_ = static_cast<uint32_t>(std::min<uint64_t>(spread_ms, UINT32_MAX));
  // HTTP/2 says it once for all streams: GOAWAY, and the open streams finish.
  if (state_ == State::Http2) h2_->drain();
  return true;
}

bool DownstreamSession::decideCloseAfterResponse() {
  if (close_after_ || !draining_) return close_after_;
  uint32_t elapsed = static_cast<uint32_t>(uv_now(ctx().loop().loop())) - drain_start_ms_;
  // The share of responses that close grows linearly from 0 to 1 over the spread, so
  // clients reconnect (to the new listener, or to another instance) a few at a time.
  if (elapsed >= drain_spread_ms_ || ctx().random() % drain_spread_ms_ < elapsed) {
    close_after_ = true;
  }
  return close_after_;
}

void DownstreamSession::repinIfStale() {
  if (ctx().isCurrent(pinned_)) return;
  const config::Snapshot& now = ctx().currentSnapshot();
  for (const config::Listener& l : now.listeners) {
    if (l.name == listener_->name && l.listen == listener_->listen) {
      PinnedSnapshot* old = pinned_;
      pinned_ = ctx().pin();
      listener_ = &l;
      if (parser_ != nullptr) parser_->setLimits(l.limits.max_header_bytes, l.limits.max_headers);
      ctx().unpin(old);
      return;
    }
  }
  // The listener is gone: this session drains and keeps the snapshot it has.
}

void DownstreamSession::closeNow(bool reset) {
  if (state_ == State::Closed) return;
  state_ = State::Closed;
  timer_kind_ = TimerKind::None;
  ctx().loop().timers().disarm(timer_);
  if (exchange_ != nullptr) exchange_->clientClosed();
  if (h2_) h2_->closeAllStreams();
  if (reset) {
    transport().closeReset();
  } else {
    transport().close();
  }
}

void DownstreamSession::onReadEnd(int status) {
  // A client may half-close after sending a whole request: answer it, then close.
  if (status == UV_EOF && state_ == State::Waiting && exchange_ != nullptr) {
    close_after_ = true;
    client_eof_ = true;
    return;
  }
  // Otherwise: a partial request is abandoned; an idle or lingering connection closes.
  closeNow();
}

void DownstreamSession::onDrained() {
  if (h2_) {
    if (state_ == State::Http2) h2_->onDrained();
    return;
  }
  if (exchange_ != nullptr) exchange_->onClientDrained();
}

void DownstreamSession::onWriteError(int) { closeNow(); }

void DownstreamSession::onClosed() {
  if (started_) ctx().stats().connections_active.sub();
  if (listener_gauge_ != nullptr) listener_gauge_->sub();
  ctx().removeSession(this);
  // A deferred TLS delivery must run (and see the transport closed) before the free.
  if (continuation_pending_ || (tls_ && tls_->deferredPending()) || (h2_ && h2_->busy())) {
    ctx().loop().defer(&DownstreamSession::destroy, this);
  } else {
    destroy(this);
  }
}

void DownstreamSession::destroy(void* self) {
  auto* s = static_cast<DownstreamSession*>(self);
  if (s->exchange_ != nullptr) s->ctx().releaseExchange(s->exchange_);
  s->releaseParser();
  s->h2_.reset();  // its streams' exchanges log through the listener: before the unpin
  s->ctx().unpin(s->pinned_);
  delete s;
}

void DownstreamSession::onTimer(void* self) {
  auto* s = static_cast<DownstreamSession*>(self);
  TimerKind kind = s->timer_kind_;
  s->timer_kind_ = TimerKind::None;
  switch (kind) {
    case TimerKind::Header:
      if (s->parser_ != nullptr && s->parser_->messageOpen()) {
        s->ctx().stats().header_timeouts.add();
        s->replyAndClose(408, "request header timeout");
      } else {
        s->closeNow();
      }
      return;
    case TimerKind::Body:
      if (s->exchange_ != nullptr && !s->exchange_->responseStarted()) {
        s->exchange_->clientClosed();
        s->replyAndClose(408, "request body timeout");
      } else {
        s->closeNow();
      }
      return;
    case TimerKind::Idle:
      // Open streams keep an HTTP/2 connection, unless their responses wait for a
      // client that took nothing for a whole idle timeout (it would hold them forever).
      if (s->state_ == State::Http2 && s->h2_->openStreams() > 0 && !s->h2_->stalled()) {
        s->timer_kind_ = TimerKind::Idle;
        s->ctx().loop().timers().arm(s->timer_, s->listener_->limits.idle_timeout_ms);
        return;
      }
      s->closeNow();
      return;
    case TimerKind::Linger:
    case TimerKind::Drain:
    case TimerKind::None:
      s->closeNow();
      return;
  }
}

int DownstreamSession::onHead(const http::MessageHead& head) {
  ctx().stats().requests.add();
  exchange_ = ctx().acquireExchange(*this);
  return exchange_->onRequestHead(head);
}

int DownstreamSession::onBody(const char* data, size_t length) {
  return exchange_->onRequestBody(data, length);
}

int DownstreamSession::onTrailers(const http::MessageHead& trailers) {
  exchange_->onRequestTrailers(trailers);
  return kContinue;
}

bool DownstreamSession::onMessageComplete() {
  exchange_->onRequestComplete();
  // An upgrade must end with llhttp's own upgrade pause, not ours.
  return !exchange_->upgradeRequested();
}

}  // namespace gw::proxy
