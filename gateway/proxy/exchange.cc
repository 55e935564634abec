#include "gateway/proxy/exchange.h"

#include <atomic>
#include <cstring>
#include <optional>

#include "gateway/core/log.h"
#include "gateway/http/hop_by_hop.h"
#include "gateway/http/wire.h"
#include "gateway/proxy/downstream.h"
#include "gateway/proxy/grpc.h"
#include "gateway/proxy/messages.h"

namespace gw::proxy {
namespace {

constexpr uint32_t kMaxResponseHeaderBytes = 64 * 1024;
constexpr uint32_t kMaxResponseHeaders = 500;
constexpr size_t kKeepBufferCapacity = 64 * 1024;
// How much of a request body a local reply reads and drops to keep the connection;
// beyond it the connection closes (a reconnect costs less than the upload).
constexpr uint64_t kDiscardLimit = 64 * 1024;

void shrink(std::string& s) {
  s.clear();
  if (s.capacity() > kKeepBufferCapacity) s.shrink_to_fit();
}

// On a `tls` listener: X-Forwarded-Proto https, and the client certificate headers
// (always stripped from the client's head; sent when a certificate was verified).
void addTlsFacts(Downstream& session, UpstreamRequest& request) {
  const tls::TlsTransport* tls = session.tls();
  if (tls == nullptr) return;
  request.proto = "https";
  const tls::ServerSettings& settings = session.listener().tls->settings();
  if (settings.client_auth == tls::ClientAuth::None) return;
  request.cert_subject_header = settings.client_subject_header;
  request.cert_subject = tls->peerSubject();
  request.cert_fingerprint_header = settings.client_fingerprint_header;
  request.cert_fingerprint = tls->peerFingerprint();
}

}  // namespace

Exchange::Exchange(ProxyContext& ctx)
    : ctx_(ctx), response_parser_(HTTP_RESPONSE, this), timer_(this, &Exchange::onTimer) {
  response_parser_.setLimits(kMaxResponseHeaderBytes, kMaxResponseHeaders);
}

void Exchange::begin(Downstream& session) {
  session_ = &session;
  pinned_ = ctx_.pin();
  ctx_.stats().requests_active.add();
}

std::string_view Exchange::peerIp() {
  if (peer_ip_.empty()) session_->peer().appendIp(peer_ip_);
  return peer_ip_;
}

void Exchange::reset() {
  if (session_ != nullptr) {
    commitResponseCount();  // a response that ended without a flush in onUpstreamRead
    recordEnd();
    // Last, and after a release fence (free on x86): a scrape that sees no request in
    // flight also sees every counter the ended requests added.
    std::atomic_thread_fence(std::memory_order_release);
    ctx_.stats().requests_active.sub();
  }
  closeUpstream();
  releaseBalancing();
  disarmTimer();
  if (pinned_ != nullptr) ctx_.unpin(pinned_);
  pinned_ = nullptr;
  session_ = nullptr;
  service_ = nullptr;
  pool_slot_ = 0;
  endpoint_ = nullptr;
  response_parser_.reset();
  shrink(head_out_);
  shrink(pending_);
  shrink(scratch_);
  shrink(request_trailers_);
  shrink(response_trailers_);
  grpc_ = deadline_armed_ = false;
  grpc_deadline_ms_ = 0;
  route_headers_.clear();
  peer_ip_.clear();
  chain_.reset();
  routed_ = RoutedRequest{};
  head_copy_.clear();
  body_received_ = max_body_ = response_bytes_ = 0;
  connected_ = request_chunked_ = request_done_ = request_has_body_ = false;
  is_head_ = upgrade_requested_ = client_http10_ = client_keep_alive_ = false;
  response_started_ = response_done_ = response_chunked_out_ = false;
  response_flushed_ = count_pending_ = false;
  response_close_delimited_ = upstream_keep_alive_ = interim_ = false;
  local_reply_ = retried_ = tunnel_ = switching_protocols_ = false;
  discarding_ = expect_continue_ = continue_sent_ = false;
  declared_length_ = discard_budget_ = 0;
  timer_kind_ = TimerKind::None;
  request_body_sent_ = upstream_write_failed_ = false;
  route_ = nullptr;
  start_ns_ = upstream_start_ns_ = upstream_end_ns_ = 0;
  bytes_in_ = bytes_out_ = bytes_out_at_head_ = 0;
  status_ = 0;
  grpc_status_ = -1;
  timed_ = logged_ = traced_ = head_seen_ = false;
  shrink(head_text_);
}

// ---------------------------------------------------------------- request side

int Exchange::onRequestHead(const http::MessageHead& head) {
  const config::Snapshot& snapshot = pinned_->get();
  const config::Limits& limits = session_->listener().limits;
  max_body_ = limits.max_body;
  is_head_ = head.method == HTTP_HEAD;
  client_http10_ = head.http_minor == 0;
  client_keep_alive_ = head.keep_alive;
  request_chunked_ = head.chunked;
  request_has_body_ = head.chunked || head.content_length > 0;
  declared_length_ = head.chunked ? 0 : head.content_length;
  noteGrpc(head);
  observeRequestHead(head);
  // An Upgrade is ignored unless forwardRequest takes it: after a local reply (an
  // error, no route, a filter's answer) the connection is HTTP/1.1 for the next request.
  if (head.upgrade && head.method != HTTP_CONNECT) session_->setUpgrade(false);

  if (head.http_major != 1) {
    sendLocalReply(505, "HTTP version not supported", true);
    return kContinue;
  }
  if (head.method == HTTP_CONNECT) {
    sendLocalReply(405, "CONNECT is not supported", true);
    return kContinue;
  }
  if (head.method == HTTP_TRACE) {
    // TRACE echoes the request as the upstream got it, with whatever credentials the
    // filters added (cross-site tracing); nginx refuses it the same way.
    sendLocalReply(405, "TRACE is not supported", true);
    return kContinue;
  }
  if (client_http10_ && head.has_transfer_encoding) {
    // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 request means faulty framing.
    session_->failRequest(400, "Transfer-Encoding in an HTTP/1.0 request");
    return kReject;
  }
  if (!http::onlyChunkedCoding(head)) {
    // llhttp accepts any coding list that ends in chunked ("gzip, chunked") and does
    // not flag an empty value; the upstream request carries only "chunked", so another
    // coding would be dropped silently, and an empty one next to a Content-Length is
    // conflicting framing (RFC 9112 §6.1). Only a single "chunked" is forwarded.
    session_->failRequest(400, "unsupported Transfer-Encoding");
    return kReject;
  }
  std::string_view host;
  size_t hosts = head.count("host", &host);
  if (hosts > 1) {
    session_->failRequest(400, "multiple Host headers");
    return kReject;
  }
  if (hosts == 1 && http::trimOws(host).empty()) {
    // RFC 9110 §7.2 allows it only for a target URI without an authority, which a
    // reverse proxy never serves; nginx refuses it too.
    session_->failRequest(400, "empty Host header");
    return kReject;
  }
  if (hosts == 0 && !client_http10_) {
    session_->failRequest(400, "missing Host header");
    return kReject;
  }
  RequestTarget target;
  if (!parseRequestTarget(head.url, head.method == HTTP_OPTIONS, target) ||
      !validHost(target.authority)) {
    session_->failRequest(400, "invalid request target");
    return kReject;
  }
  if (!validHost(host)) {
    session_->failRequest(400, "invalid Host header");
    return kReject;
  }
  // An absolute-form target wins over Host (RFC 9112 §3.2.2), but a client sends them
  // identical: two authorities in one request are how a hop that routes by one and a
  // hop that routes by the other get out of step (HAProxy refuses them too).
  if (!target.authority.empty() && hosts == 1 &&
      !sameAuthority(target.scheme, target.authority, host)) {
    session_->failRequest(400, "Host differs from the request target's authority");
    return kReject;
  }
  if (session_->listener().redirect_https_port != 0) {
    sendHttpsRedirect(target.authority.empty() ? host : target.authority, target.path_and_query);
    return kContinue;
  }
  if (head.has_content_length && head.content_length > max_body_) {
    sendLocalReply(413, "request body too large", true);
    return kContinue;
  }
  std::string_view expect;
  if (size_t expects = head.count("expect", &expect); expects > 0) {
    // Two Expect fields are one list ("100-continue, foo"): only the first was looked
    // at, so "Expect: 100-continue" + "Expect: foo" passed while the list form got 417.
    if (expects > 1 || !http::equalsIgnoreCase(http::trimOws(expect), "100-continue")) {
      sendLocalReply(417, "unsupported expectation", true);
      return kContinue;
    }
    expect_continue_ = !client_http10_;  // an HTTP/1.0 client does not wait for 100
  }

  route::RequestFacts facts;
  facts.method = llhttp_method_name(static_cast<llhttp_method_t>(head.method));
  facts.host = target.authority.empty() ? host : target.authority;
  facts.path = target.path;
  route_headers_.resize(head.header_count);
  for (size_t i = 0; i < head.header_count; ++i) {
    route_headers_[i] = {head.name(i), head.value(i)};
  }
  facts.headers = route_headers_.data();
  facts.header_count = route_headers_.size();
  const route::Route* route = snapshot.router->match(facts);
  if (route == nullptr) {
    sendLocalReply(404, "no route", false);
    return kContinue;
  }
  route_ = route;
  // RFC 9110 §7.8: an Upgrade in an HTTP/1.0 request MUST be ignored.
  routed_.upgrade =
      head.upgrade && !client_http10_ && http::upgradeOffersOnly(head, route->upgrades);
  std::string rewrite_storage;
  service_ = snapshot.findService(route->service);
  routed_.head = &head;
  routed_.method = facts.method;
  routed_.upstream_target =
      route::Router::rewritePath(*route, target.path_and_query, rewrite_storage);
  routed_.authority = target.authority;
  routed_.path = target.path;
  switch (runRequestFilters(snapshot, *route, head, target, facts.host)) {
    case FilterOutcome::Continue:
      forwardRequest();
      return kContinue;
    case FilterOutcome::Answered:
      return kContinue;
    case FilterOutcome::Paused:
      return kPause;
  }
  return kContinue;
}

void Exchange::forwardRequest() {
  const config::Snapshot& snapshot = pinned_->get();
  const http::MessageHead& head = *routed_.head;
  if (!chooseEndpoint(head, routed_.path)) return;
  upgrade_requested_ = routed_.upgrade;
  if (upgrade_requested_) session_->setUpgrade(true);

  UpstreamRequest request;
  request.head = &head;
  request.method = routed_.method;
  request.target = routed_.upstream_target;
  if (chain_.active()) request.edits = &chain_.context().request_headers;
  request.authority = routed_.authority;
  request.chunked_body = request_chunked_;
  request.upgrade = upgrade_requested_;
  request.forwarding = &snapshot.forwarding;
  for (const net::Cidr& cidr : snapshot.forwarding.trusted_proxies) {
    if (cidr.contains(session_->peer())) {
      request.trusted_peer = true;
      break;
    }
  }
  request.client_ip = peerIp();
  addTlsFacts(*session_, request);
  request.default_host = endpoint_->key();
  head_out_.clear();
  writeUpstreamRequestHead(request, head_out_);

  if (expect_continue_ && request_has_body_) {
    static constexpr char kContinueLine[] = "HTTP/1.1 100 Continue\r\n\r\n";
    session_->transport().stage(kContinueLine, sizeof kContinueLine - 1);
    continue_sent_ = true;
  }
  routed_ = RoutedRequest{};  // its views may end with the parser callback

  markUpstreamStart();
  conn_ = endpoint_->takeIdle(this);
  if (conn_ != nullptr) {
    connected_ = true;
    conn_->transport().stage(head_out_.data(), head_out_.size());
    if (grpc_deadline_ms_ != 0) armTimer(TimerKind::Response, 0);  // see onUpstreamConnected
  } else {
    connectUpstream();
  }
}

int Exchange::onRequestBody(const char* data, size_t length) {
  bytes_in_ += length;
  if (local_reply_ || response_done_) {
    if (discarding_) discardBody(length);
    return kContinue;  // not wanted
  }
  body_received_ += length;
  if (body_received_ > max_body_) {
    if (response_started_) {
      session_->failRequest(413, "request body too large");
      return kReject;
    }
    closeUpstream();
    sendLocalReply(413, "request body too large", true);
    return kContinue;
  }
  if (chain_.active() && !filterRequestBody(std::string_view(data, length), false)) {
    return kContinue;
  }
  bool copy = session_->requestInputOwned();
  if (request_chunked_) {
    char header[http::kChunkHeaderMax];
    stageUpstream(header, http::chunkHeader(header, length), true);
    stageUpstream(data, length, copy);
    stageUpstream("\r\n", 2, false);
  } else {
    stageUpstream(data, length, copy);
  }
  return kContinue;
}

void Exchange::noteGrpc(const http::MessageHead& head) {
  // One pass over the fields, no allocation; only a gRPC request looks further.
  std::string_view content_type;
  if (head.count("content-type", &content_type) != 1 || !grpc::isGrpcContentType(content_type)) {
    return;
  }
  grpc_ = true;
  std::string_view timeout;
  if (head.count("grpc-timeout", &timeout) != 1) return;
  // A malformed value is ignored (no deadline), as gRPC servers and Envoy do.
  if (std::optional<uint64_t> ms = grpc::parseTimeout(http::trimOws(timeout))) {
    grpc_deadline_ms_ = uv_now(ctx_.loop().loop()) + std::max<uint64_t>(*ms, 1);
  }
}

GrpcReply Exchange::grpcReply() const {
  if (!grpc_ || session_ == nullptr) return GrpcReply::None;
  // HTTP/2 turns a head without body into one HEADERS frame with END_STREAM; HTTP/1.0
  // has no trailers, and a response to HEAD no body to end with them.
  return session_->isHttp2() || client_http10_ || is_head_ ? GrpcReply::InHead
                                                           : GrpcReply::Trailers;
}

void Exchange::onRequestTrailers(const http::MessageHead& trailers) {
  // Only a chunked upstream request can carry them (a Content-Length one drops them).
  if (!request_chunked_ || local_reply_ || response_done_) return;
  request_trailers_.clear();
  writeTrailerSection(trailers, request_trailers_);
}

void Exchange::onRequestComplete() {
  request_done_ = true;
  if (discarding_) {
    discarding_ = false;
    session_->exchangeDone(true);  // kept, as the reply said (unless closing since)
    return;
  }
  if (local_reply_ || response_done_) return;
  if (chain_.active() && !filterRequestBody({}, true)) return;
  if (request_chunked_) {
    if (request_trailers_.empty()) {
      stageUpstream("0\r\n\r\n", 5, false);
    } else {
      stageUpstream(request_trailers_.data(), request_trailers_.size(), true);
    }
  }
  if (connected_ && !response_started_) armResponseTimer();
}

void Exchange::stageUpstream(const char* data, size_t length, bool copy) {
  if (upstream_write_failed_) return;  // no one takes it: dropped
  if (connected_ && conn_ != nullptr) {
    if (copy) {
      conn_->transport().stageCopy(data, length);
    } else {
      conn_->transport().stage(data, length);
    }
    request_body_sent_ = request_body_sent_ || body_received_ > 0;
  } else {
    pending_.append(data, length);
  }
}

void Exchange::flushUpstream() {
  if (upstream_write_failed_) return;
  if (conn_ == nullptr || !connected_) {
    if (pending_.size() > net::Transport::kHighWater) session_->pauseReading();
    return;
  }
  if (!conn_->transport().flush()) {
    onUpstreamWriteError(UV_EPIPE);
    return;
  }
  if (conn_ != nullptr && conn_->transport().overHighWater()) session_->pauseReading();
}

void Exchange::tunnelFromClient(const char* data, size_t length) {
  if (conn_ == nullptr) return;
  conn_->transport().stage(data, length);
  if (!conn_->transport().flush()) {
    closeUpstream();
    session_->abort();
    return;
  }
  if (conn_->transport().overHighWater()) session_->pauseReading();
}

void Exchange::clientClosed() { closeUpstream(); }

void Exchange::onClientDrained() {
  if (conn_ == nullptr) return;
  conn_->transport().startReading();
  if (timer_kind_ == TimerKind::Send) armResponseTimer();
}

// ---------------------------------------------------------------- upstream connection

void Exchange::connectUpstream() {
  int error = 0;
  connected_ = upstream_write_failed_ = false;
  if (!pool_->admitConnection()) {
    failUpstream(503, "circuit breaker open: too many upstream connections");
    return;
  }
  conn_ = endpoint_->connect(this, error);
  if (conn_ == nullptr) {
    ctx_.stats().upstream_connect_failures.add();
    noteTryFailure();
    if (retryAfter(TryFailure::ConnectFailure)) return;
    failUpstream(502, "upstream connect failed");
    return;
  }
  pool_->pending++;
  counted_pending_ = true;
  armTimer(TimerKind::Connect, service_->upstream_connect_timeout_ms);
}

void Exchange::onUpstreamConnected(int status) {
  disarmTimer();
  if (counted_pending_) {
    pool_->pending--;
    counted_pending_ = false;
  }
  if (status != 0) {
    ctx_.stats().upstream_connect_failures.add();
    closeUpstream();
    if (status == UV_EPROTO) {  // upstream TLS: handshake or certificate verification
      ctx_.stats().tls.upstream_handshake_failures.add();
      failUpstream(502, "upstream TLS handshake failed");
      return;
    }
    noteTryFailure();
    if (retryAfter(TryFailure::ConnectFailure)) return;
    failUpstream(502, "upstream connection refused");
    return;
  }
  connected_ = true;
  conn_->transport().startReading();
  conn_->transport().stage(head_out_.data(), head_out_.size());
  if (!pending_.empty()) {
    conn_->transport().stage(pending_.data(), pending_.size());
    request_body_sent_ = request_body_sent_ || body_received_ > 0;
  }
  bool ok = conn_->transport().flush();
  pending_.clear();
  if (!ok) {
    onUpstreamWriteError(UV_EPIPE);
    return;
  }
  if (request_done_) {
    armResponseTimer();
  } else if (grpc_deadline_ms_ != 0) {
    armTimer(TimerKind::Response, 0);  // a streaming request: only the client's deadline
  }
  if (!conn_->transport().overHighWater()) session_->resumeReading();
}

void Exchange::armResponseTimer() { armTimer(TimerKind::Response, tryTimeoutMs()); }

void Exchange::armTimer(TimerKind kind, uint64_t ms) {
  timer_kind_ = kind;
  deadline_armed_ = false;
  if (grpc_deadline_ms_ != 0 && (kind == TimerKind::Connect || kind == TimerKind::Response)) {
    // grpc-timeout: the response deadline is the sooner of the route's and the client's.
    uint64_t now = uv_now(ctx_.loop().loop());
    uint64_t left = grpc_deadline_ms_ > now ? grpc_deadline_ms_ - now : 0;
    if (ms == 0 || left <= ms) {
      // The timer queue keeps one list per distinct duration, so a duration the client
      // chose is rounded down to a power of two (at most 64 lists); onTimer re-arms for
      // the rest until the deadline is reached.
      ms = left == 0 ? 0 : uint64_t{1} << (63 - __builtin_clzll(left));
      deadline_armed_ = true;
    }
  }
  ctx_.loop().timers().arm(timer_, ms);
}

void Exchange::disarmTimer() {
  timer_kind_ = TimerKind::None;
  ctx_.loop().timers().disarm(timer_);
}

void Exchange::onUpstreamRead(const char* data, size_t length) {
  net::Transport& client = session_->transport();
  if (tunnel_) {
    client.stage(data, length);
    if (!client.flush()) {
      closeUpstream();
      session_->abort();
      return;
    }
    if (client.overHighWater()) conn_->transport().stopReading();
    return;
  }
  response_bytes_ += length;
  if (!response_done_) armResponseTimer();
  using Outcome = http::Parser::Outcome;
  switch (response_parser_.feed(data, length)) {
    case Outcome::NeedMore:
      break;
    case Outcome::Paused:
      finishResponse();
      break;
    case Outcome::Upgraded: {
      tunnel_ = true;
      disarmTimer();
      if (response_parser_.hasPendingInput()) {
        std::string_view rest = response_parser_.pendingInput();
        client.stageCopy(rest.data(), rest.size());
        response_parser_.clearPendingInput();
      }
      session_->enterTunnel();
      break;
    }
    case Outcome::Error:
      closeUpstream();
      if (retry_on_head_) {
        // onHead refused a status the retry policy names: try another endpoint.
        retry_on_head_ = false;
        if (!startRetry()) failUpstream(502, "upstream failed and no endpoint is left to retry");
        return;
      }
      if (!response_started_) {
        failUpstream(502, "invalid response from upstream");
      } else if (!response_flushed_ && client.discardStaged()) {
        // The broken body came in the read that brought the head: nothing of this
        // response has left, so the client can still get a 502 rather than a bare close.
        response_started_ = response_chunked_out_ = response_close_delimited_ = false;
        count_pending_ = false;
        bytes_out_ = bytes_out_at_head_;
        failUpstream(502, "invalid response from upstream");
      } else {
        ctx_.stats().upstream_resets.add();
        session_->abort();
      }
      return;
  }
  if (response_started_ && !response_flushed_) {
    // Committed: it leaves now. Counted first, so that a client that has the response
    // also finds it in /stats and /metrics.
    commitResponseCount();
    response_flushed_ = true;
  }
  if (!session_->flushResponse()) {
    session_->abort();
    return;
  }
  if (conn_ != nullptr && client.overHighWater()) {
    // The client reads slower than the upstream sends: stop reading the upstream. Its
    // silence is now ours, so the response timeout gives way to a send timeout.
    conn_->transport().stopReading();
    armTimer(TimerKind::Send, session_->listener().limits.idle_timeout_ms);
  }
}

void Exchange::onUpstreamReadEnd(int status) {
  if (status == UV_EOF && !tunnel_ && response_parser_.messageOpen() &&
      !response_parser_.inHead()) {
    // A body delimited by the connection's end is complete now (or cut short: finish()
    // tells).
    if (response_parser_.finish() == http::Parser::Outcome::NeedMore && response_done_) {
      finishResponse();
      if (!session_->transport().flush()) session_->abort();
      return;
    }
  }
  upstreamBroke(status == UV_EOF ? "upstream closed the connection" : "upstream connection failed");
}

void Exchange::onUpstreamWriteError(int) {
  if (upstream_write_failed_) return;
  if (conn_ != nullptr && !tunnel_ && conn_->readableAfterWriteError()) {
    // The upstream may have answered without reading the whole request (an early 401 or
    // 413) and closed: its answer is still to be read, ahead of the reset. So stop
    // sending and let the read side decide: a response is forwarded; a close without one
    // ends as before (onUpstreamReadEnd), and the response timeout bounds the wait.
    upstream_write_failed_ = true;
    if (!response_started_) armResponseTimer();
    session_->resumeReading();  // the rest of the body is read and dropped
    return;
  }
  upstreamBroke("upstream connection failed");
}

void Exchange::upstreamBroke(const char* message) {
  if (tunnel_) {
    closeUpstream();
    session_->abort();
    return;
  }
  if (!response_started_ && response_bytes_ == 0 && retryOnFreshConnection()) return;
  closeUpstream();
  if (!response_started_) {
    noteTryFailure();
    if (response_bytes_ == 0 && retryAfter(TryFailure::Reset)) return;
    failUpstream(502, message);
  } else {
    ctx_.stats().upstream_resets.add();
    session_->abort();
  }
}

void Exchange::onUpstreamDrained() { session_->resumeReading(); }

bool Exchange::retryOnFreshConnection() {
  // Only a reused keep-alive connection that the upstream closed before answering, and
  // only when no body byte was sent: then the upstream cannot have acted on the request.
  if (conn_ == nullptr || !conn_->reused() || retried_ || request_body_sent_ ||
      body_received_ > 0) {
    return false;
  }
  retried_ = true;
  ctx_.stats().upstream_retries.add();
  closeUpstream();
  connectUpstream();
  return true;
}

void Exchange::closeUpstream() {
  if (counted_pending_) {
    pool_->pending--;
    counted_pending_ = false;
  }
  if (conn_ != nullptr) {
    conn_->close();
    conn_ = nullptr;
  }
  connected_ = false;
}

void Exchange::onTimer(void* self) {
  auto* e = static_cast<Exchange*>(self);
  TimerKind kind = e->timer_kind_;
  e->timer_kind_ = TimerKind::None;
  if (kind == TimerKind::Backoff) {
    e->startTry();  // a retry's backoff is over
    return;
  }
  if (e->deadline_armed_ && uv_now(e->ctx_.loop().loop()) < e->grpc_deadline_ms_) {
    e->armTimer(kind, 0);  // a rounded-down step towards the deadline (see armTimer)
    return;
  }
  if (e->deadline_armed_) {
    // The client's grpc-timeout passed: no retry, and not the endpoint's fault (no
    // outlier or upstream-timeout count). The upstream connection is closed (the request
    // cancelled) and the client gets DEADLINE_EXCEEDED: as a local reply, or, when the
    // response had started, in the trailers that end it (a reset when the response is
    // not chunked, so it cannot carry trailers).
    e->deadline_armed_ = false;
    e->closeUpstream();
    if (!e->response_started_) {
      e->failUpstream(504, "gateway: grpc-timeout expired");
    } else if (e->response_chunked_out_ && !e->response_done_) {
      e->endWithDeadlineTrailers();
    } else {
      e->session_->abort();
    }
    return;
  }
  if (kind != TimerKind::Send) e->ctx_.stats().upstream_timeouts.add();
  e->closeUpstream();
  if (!e->response_started_) {
    e->noteTryFailure();
    if (kind == TimerKind::Connect && e->retryAfter(TryFailure::ConnectFailure)) return;
    if (kind == TimerKind::Response && e->response_bytes_ == 0 &&
        e->retryAfter(TryFailure::Timeout)) {
      return;
    }
    e->failUpstream(
        504, kind == TimerKind::Connect ? "upstream connect timeout" : "upstream response timeout");
  } else {
    e->session_->abort();
  }
}

// ---------------------------------------------------------------- response side

int Exchange::onHead(const http::MessageHead& head) {
  int status = head.status;
  if (status == 101) {
    if (!upgrade_requested_) {
      response_parser_.fail(502, "unexpected 101 from upstream");
      return kReject;
    }
    scratch_.clear();
    DownstreamResponse response;
    response.head = &head;
    response.upgrade = true;
    response.via = pinned_->get().forwarding.via;
    writeDownstreamResponseHead(response, scratch_);
    session_->transport().stage(scratch_.data(), scratch_.size());
    bytes_out_ += scratch_.size();
    response_started_ = true;
    switching_protocols_ = true;
    countResponse(status);
    return kContinue;
  }
  if (status < 200) {
    interim_ = true;  // 100/102/103: not forwarded; the final response follows
    return kContinue;
  }
  if (head.has_transfer_encoding) {
    // Only a single "chunked" is taken, as on the request side. With another coding
    // last, RFC 9112 §6.3 reads the body to the connection's end, and the client would
    // get the raw chunked bytes; with one before chunked ("gzip, chunked") it would get
    // a coding nobody tells it about (Transfer-Encoding is hop-by-hop, never forwarded).
    // In HTTP/1.0 it is faulty framing (§6.1). HAProxy refuses these too.
    if (!http::onlyChunkedCoding(head) || head.http_minor == 0) {
      response_parser_.fail(502, "unsupported Transfer-Encoding in response");
      return kReject;
    }
  }
  if (status >= 500) {
    noteTryFailure();
    if (retryAllowed(TryFailure::Status, status)) {
      retry_on_head_ = true;  // acted on in onUpstreamRead, once the parser has returned
      response_parser_.fail(502, "retrying on another endpoint");
      return kReject;
    }
  } else if (pool_ != nullptr) {
    pool_->reportSuccess(*endpoint_);
    pool_->reportLatency(*endpoint_, uv_now(ctx_.loop().loop()) - try_started_ms_);
  }
  bool no_body = is_head_ || status == 204 || status == 304;
  if (!no_body && !head.has_content_length) {
    // Chunked or read-until-close from upstream: chunked to an HTTP/1.1 client, the
    // connection's end to an HTTP/1.0 client.
    if (client_http10_) {
      response_close_delimited_ = true;
    } else {
      response_chunked_out_ = true;
    }
  }
  upstream_keep_alive_ = head.keep_alive;
  bool close = !client_keep_alive_ || session_->decideCloseAfterResponse() ||
               response_close_delimited_ || (request_has_body_ && !request_done_) ||
               upgrade_requested_;
  if (close) session_->setCloseAfterResponse();

  scratch_.clear();
  DownstreamResponse response;
  response.head = &head;
  response.chunked_body = response_chunked_out_;
  response.close = close;
  response.keep_alive_header = client_http10_ && !close;
  response.via = pinned_->get().forwarding.via;
  if (chain_.active()) {
    chain_.runResponseHeaders(status, &head);
    response.edits = &chain_.context().response_headers;
  }
  stickyCookie(response);
  writeDownstreamResponseHead(response, scratch_);
  session_->transport().stage(scratch_.data(), scratch_.size());
  bytes_out_at_head_ = bytes_out_;
  bytes_out_ += scratch_.size();
  response_started_ = true;
  // Counted when committed: until the head is flushed, an error can still replace it.
  status_ = status;
  count_pending_ = true;
  return no_body ? kSkipBody : kContinue;
}

int Exchange::onBody(const char* data, size_t length) {
  if (chain_.active()) chain_.runResponseBody(std::string_view(data, length), false);
  net::Transport& client = session_->transport();
  bool copy = response_parser_.inputIsOwned();
  bytes_out_ += length;
  if (response_chunked_out_) {
    char header[http::kChunkHeaderMax];
    size_t header_length = http::chunkHeader(header, length);
    bytes_out_ += header_length + 2;
    client.stageCopy(header, header_length);
    if (copy)
      client.stageCopy(data, length);
    else
      client.stage(data, length);
    client.stage("\r\n", 2);
  } else {
    if (copy)
      client.stageCopy(data, length);
    else
      client.stage(data, length);
  }
  return kContinue;
}

int Exchange::onTrailers(const http::MessageHead& trailers) {
  // Forwarded to a chunked client response (HTTP/1.1, and HTTP/2 whose stream turns
  // them into a HEADERS frame); dropped otherwise, as nginx does.
  if (response_chunked_out_ && !interim_ && !switching_protocols_) {
    response_trailers_.clear();
    writeTrailerSection(trailers, response_trailers_);
  }
  return kContinue;
}

bool Exchange::onMessageComplete() {
  if (interim_) {
    interim_ = false;
    return false;
  }
  // A 101 must end with llhttp's own upgrade pause, not ours.
  if (switching_protocols_) return false;
  response_done_ = true;
  markUpstreamEnd();
  if (chain_.active()) chain_.runResponseBody({}, true);
  if (response_chunked_out_) {
    if (response_trailers_.empty()) {
      session_->transport().stage("0\r\n\r\n", 5);
      bytes_out_ += 5;
    } else {
      session_->transport().stageCopy(response_trailers_.data(), response_trailers_.size());
      bytes_out_ += response_trailers_.size();
    }
  }
  return true;
}

void Exchange::endWithDeadlineTrailers() {
  static constexpr std::string_view kTrailers =
      "0\r\ngrpc-status: 4\r\ngrpc-message: gateway: grpc-timeout expired\r\n\r\n";
  response_done_ = true;
  markUpstreamEnd();
  grpc_status_ = 4;
  net::Transport& client = session_->transport();
  client.stage(kTrailers.data(), kTrailers.size());
  bytes_out_ += kTrailers.size();
  if (!client.flush()) {
    session_->abort();
    return;
  }
  disarmTimer();
  session_->exchangeDone(client_keep_alive_ && !session_->closeAfterResponse());
}

void Exchange::finishResponse() {
  disarmTimer();
  bool reusable = conn_ != nullptr && upstream_keep_alive_ && request_done_ &&
                  !upstream_write_failed_ && !response_parser_.hasPendingInput();
  if (reusable) {
    conn_->release();
    conn_ = nullptr;
    connected_ = false;
  } else {
    closeUpstream();
  }
  session_->exchangeDone(client_keep_alive_ && !session_->closeAfterResponse() &&
                         !response_close_delimited_);
}

void Exchange::countResponse(int status) {
  status_ = status;
  WorkerStats& stats = ctx_.stats();
  stats.countStatus(status);
  if (pool_slot_ != 0) {
    stats.pool_requests[pool_slot_].add();
    if (status >= 500) stats.pool_failures[pool_slot_].add();
  }
}

void Exchange::failUpstream(int status, const char* message) {
  markUpstreamEnd();
  sendLocalReply(status, message, false);
}

void Exchange::sendHttpsRedirect(std::string_view host, std::string_view path_and_query) {
  if (host.empty()) {
    sendLocalReply(400, "a redirect to HTTPS needs a Host header", true);
    return;
  }
  local_reply_ = true;
  response_started_ = true;
  response_done_ = true;
  disarmTimer();
  bool close = !client_keep_alive_ || session_->decideCloseAfterResponse() ||
               (request_has_body_ && !request_done_ && !startDiscardingBody());
  if (close) session_->setCloseAfterResponse();
  std::string location;
  httpsLocation(host, session_->listener().redirect_https_port, path_and_query, location);
  scratch_.clear();
  writeRedirectReply(308, location, close, client_http10_ && !close, scratch_);
  bytes_out_ += scratch_.size();
  session_->transport().stageCopy(scratch_);
  session_->transport().flush();
  ctx_.stats().local_replies.add();
  countResponse(308);
  if (!discarding_) session_->exchangeDone(!close);
}

void Exchange::sendLocalReply(int status, std::string_view message, bool close,
                              const filter::LocalReply* reply) {
  local_reply_ = true;
  response_started_ = true;
  response_done_ = true;
  disarmTimer();
  // After an upgrade was forwarded the parser switches protocols at the request's end,
  // so the connection cannot carry another HTTP request (as when the upstream answers
  // an upgrade with anything but 101).
  close = close || !client_keep_alive_ || session_->decideCloseAfterResponse() ||
          upgrade_requested_ || (request_has_body_ && !request_done_ && !startDiscardingBody());
  if (close) session_->setCloseAfterResponse();
  scratch_.clear();
  LocalReplyExtras extras;
  extras.grpc = grpcReply();
  extras.keep_alive_header = client_http10_ && !close;
  if (extras.grpc != GrpcReply::None) grpc_status_ = grpc::statusFor(status);
  if (chain_.active()) {
    // The filters that ran see the local reply like an upstream response (request id,
    // CORS headers on a 401, ...).
    chain_.runResponseHeaders(status, nullptr);
    extras.request_id = chain_.context().request_id;
    extras.headers = &chain_.context().response_headers;
    if (reply != nullptr && reply->custom_body) {
      extras.custom_body = true;
      extras.body = reply->body;
      extras.content_type = reply->content_type;
    }
  }
  writeLocalReply(status, message, close, is_head_, extras, scratch_);
  bytes_out_ += scratch_.size();
  session_->transport().stageCopy(scratch_);
  session_->transport().flush();
  ctx_.stats().local_replies.add();
  countResponse(status);
  // While the body is discarded the exchange lasts until the request ends (onRequestComplete).
  if (!discarding_) session_->exchangeDone(!close);
}

bool Exchange::startDiscardingBody() {
  // An HTTP/2 stream ends on its own; its connection carries the next requests anyway.
  if (session_->isHttp2()) return false;
  // A client waiting for 100 Continue sends no body after a final status: reading a
  // declared length would take its next request for body bytes.
  if (expect_continue_ && !continue_sent_) return false;
  if (!request_chunked_ && declared_length_ - body_received_ > kDiscardLimit) return false;
  discarding_ = true;
  discard_budget_ = kDiscardLimit;
  session_->resumeReading();  // upstream backpressure may have paused the body
  return true;
}

void Exchange::discardBody(size_t length) {
  if (length <= discard_budget_) {
    discard_budget_ -= length;
    return;
  }
  // A chunked body longer than a reply is worth reading: close (lingering) instead.
  discarding_ = false;
  session_->setCloseAfterResponse();
  session_->exchangeDone(false);
}

// ---------------------------------------------------------------- filter chain

void Exchange::establishClient(const config::Snapshot& snapshot, const http::MessageHead& head) {
  client_address_ = session_->peer();
  client_ip_.clear();  // empty: the TCP peer, whose text peerIp() already holds
  const std::vector<net::Cidr>& trusted = snapshot.forwarding.trusted_proxies;
  auto isTrusted = [&](const net::SocketAddress& a) {
    for (const net::Cidr& cidr : trusted) {
      if (cidr.contains(a)) return true;
    }
    return false;
  };
  if (trusted.empty() || !isTrusted(client_address_)) return;
  // Walk X-Forwarded-For from the right (the nearest hop) past trusted proxies. The
  // fields are visited last to first, each one's list right to left.
  for (size_t i = head.header_count; i-- > 0;) {
    if (!http::equalsIgnoreCase(head.name(i), "x-forwarded-for")) continue;
    std::string_view list = head.value(i);
    while (!list.empty()) {
      size_t comma = list.rfind(',');
      std::string_view item =
          http::trimOws(comma == std::string_view::npos ? list : list.substr(comma + 1));
      list = comma == std::string_view::npos ? std::string_view() : list.substr(0, comma);
      if (item.empty()) continue;
      std::optional<net::SocketAddress> address = net::parseIpPort(item, 0);
      if (!address) return;  // garbage from upstream of the trusted hop: stop at that hop
      client_address_ = *address;
      client_ip_.assign(item);
      if (!isTrusted(*address)) return;
    }
  }
}

Exchange::FilterOutcome Exchange::runRequestFilters(const config::Snapshot& snapshot,
                                                    const route::Route& route,
                                                    const http::MessageHead& head,
                                                    const RequestTarget& target,
                                                    std::string_view host) {
  const route::Route* first = snapshot.router->routes().data();
  const filter::ChainConfig* chain = snapshot.filtersFor(static_cast<size_t>(&route - first));
  if (chain == nullptr || chain->empty()) return FilterOutcome::Continue;  // no filters: no cost
  establishClient(snapshot, head);
  filter::Context& c = chain_.start(*chain);
  chain_.setOwner(this, &Exchange::onFiltersResumed);
  c.worker = &ctx_.filterResources();
  filter::RequestInfo& info = c.request;
  info.method = llhttp_method_name(static_cast<llhttp_method_t>(head.method));
  // The head's bytes may move once this callback returns; filters read these in later
  // phases (${host}, ${path}), so they get the arena's copies.
  info.path_and_query = c.arena().copy(target.path_and_query);
  info.path = info.path_and_query.substr(0, target.path.size());
  info.host = c.arena().copy(host);
  info.client_ip = client_ip_.empty() ? peerIp() : std::string_view(client_ip_);
  info.client_address = &client_address_;
  info.route = route.name;
  info.head = &head;
  info.content_length = head.has_content_length ? head.content_length : 0;
  info.chunked = head.chunked;
  c.upstream_target = routed_.upstream_target;
  filter::Status status = chain_.runRequestHeaders();
  switch (status) {
    case filter::Status::Continue:
      info.head = nullptr;  // its views end with this callback
      routed_.upstream_target = c.upstream_target;
      return FilterOutcome::Continue;
    case filter::Status::Respond:
      info.head = nullptr;
      sendFilterReply(false);
      return FilterOutcome::Answered;
    case filter::Status::Pause:
      break;
  }
  // A filter waits for async work: the parser stops after this head (kPause) and
  // everything that views the parser's bytes moves to storage of our own.
  head_copy_.assign(head);
  info.head = &head_copy_.head();
  routed_.head = &head_copy_.head();
  routed_.authority = c.arena().copy(routed_.authority);
  routed_.path = c.arena().copy(routed_.path);
  c.upstream_target = c.arena().copy(c.upstream_target);
  return FilterOutcome::Paused;
}

void Exchange::onFiltersResumed(void* self, filter::Status status) {
  auto* e = static_cast<Exchange*>(self);
  Downstream* session = e->session_;
  filter::Context& c = e->chain_.context();
  c.request.head = nullptr;
  if (status == filter::Status::Respond) {
    e->sendFilterReply(false);
  } else {
    e->routed_.upstream_target = c.upstream_target;
    e->forwardRequest();
  }
  // The body (and any pipelined bytes) waited in the parser. This may end the exchange
  // and the session, so nothing here touches either afterwards.
  session->resumeParsing();
}

bool Exchange::filterRequestBody(std::string_view chunk, bool end) {
  if (chain_.runRequestBody(chunk, end) != filter::Status::Respond) return true;
  if (response_started_) {
    // The upstream already answered: too late for a local reply; cut the client off.
    closeUpstream();
    session_->abort();
    return false;
  }
  closeUpstream();
  sendFilterReply(!end);
  return false;
}

void Exchange::sendFilterReply(bool close) {
  const filter::LocalReply& reply = chain_.context().reply;
  int status = reply.status >= 200 && reply.status <= 599 ? reply.status : 500;
  ctx_.stats().filter_replies[chain_.repliedSlot()][filterReplyCode(status)].add();
  std::string_view message = reply.message.empty() ? reasonPhrase(status) : reply.message;
  sendLocalReply(status, message, close, &reply);
}

}  // namespace gw::proxy
