#pragma once
// One client connection: reads requests with the HTTP/1 parser, runs one exchange at a
// time (pipelined requests wait, unparsed, until the previous response is done, so
// responses go out in order), and enforces the listener's limits and timeouts.
//
// Lifecycle: created on accept in the worker's session slabs (new (slabs) ...), freed
// after its transport's close callback (deferred if a continuation is still scheduled).
// Loop-confined.

#include <memory>
#include <string>

#include "gateway/config/snapshot.h"
#include "gateway/core/slab_pool.h"
#include "gateway/core/timer.h"
#include "gateway/http/parser.h"
#include "gateway/net/tcp_transport.h"
#include "gateway/proxy/downstream.h"
#include "gateway/proxy/proxy_context.h"
#include "gateway/tls/tls_transport.h"

namespace gw::proxy {

class Exchange;

class H2Connection;

// Also the owner of the connection when it speaks HTTP/2 (H2Connection): it keeps the
// transport, the timer, the drain and the worker's bookkeeping, and hands the bytes over.
// In slabs of its own (ProxyContext::sessionSlabs(), see SlabPool): thousands idle for
// minutes, and between heap objects of requests they would pin the holes those leave.
class DownstreamSession final : public Downstream,
                                public net::TransportHandler,
                                public http::MessageSink,
                                public SlabAllocated {
 public:
  DownstreamSession(ProxyContext& ctx, PinnedSnapshot* pinned, const config::Listener& listener);
  DownstreamSession(const DownstreamSession&) = delete;
  DownstreamSession& operator=(const DownstreamSession&) = delete;

  // Accepts from `server` and starts reading; on failure the session closes itself.
  void start(uv_stream_t* server);

  ProxyContext& ctx() { return ProxyContext::of(tcp_.handle()->loop); }
  // The client's byte stream: the TCP socket, or TLS over it on a `tls` listener.
  net::Transport& transport() override {
    return tls_ ? static_cast<net::Transport&>(*tls_) : static_cast<net::Transport&>(tcp_);
  }
  // The TLS layer on a `tls` listener (client certificate, ALPN), else null.
  const tls::TlsTransport* tls() const override { return tls_.get(); }
  const config::Listener& listener() const override { return *listener_; }
  const net::SocketAddress& peer() const override { return peer_; }
  // The request parser; present while a request is read or served (see parser_).
  http::Parser& parser() { return *parser_; }
  void failRequest(int status, const char* reason) override { parser_->fail(status, reason); }
  bool requestInputOwned() const override { return parser_->inputIsOwned(); }
  PinnedSnapshot* pinned() const { return pinned_; }

  // --- called by the current exchange ---
  // The response has been handed to the transport. `keep_alive`: the connection may
  // carry another request. Continues with pipelined input after the current callback.
  void exchangeDone(bool keep_alive) override;
  bool flushResponse() override;
  // Something failed mid-response: close now so the client sees a truncated message.
  void abort() override;
  // Upstream backpressure on the request body.
  void pauseReading() override;
  void resumeReading() override;
  // A filter paused the request after its head (the parser stopped there) and the
  // exchange went on: parse the body and whatever follows. May close the session.
  void resumeParsing() override;
  // The exchange switched protocols: from now on bytes are piped both ways.
  void enterTunnel() override;
  void setUpgrade(bool upgrade) override { parser_->setUpgrade(upgrade); }
  // The response will end the connection (sent with Connection: close).
  bool closeAfterResponse() const override { return close_after_; }
  void setCloseAfterResponse() override { close_after_ = true; }
  // Asked once per response head: whether it should end the connection because the
  // session is draining (a growing share over the drain spread), latched.
  bool decideCloseAfterResponse() override;

  // The connection must go (graceful shutdown, or its listener was removed): from now on
  // a growing share of its responses carries Connection: close, reaching all of them
  // after `spread_ms`. An idle connection is not closed here (a request may already be
  // on the wire): it closes after a response that said so, at its idle timeout, or at
  // the drain deadline.
  // Returns false when the session was draining already.
  bool startDrain(uint64_t spread_ms);
  // Counts this session in `gauge` (its listener's open connections) until it closes.
  void countIn(Counter* gauge) {
    gauge->add();
    listener_gauge_ = gauge;
  }
  // The worker serves a new snapshot: an idle session moves to it at once.
  void onSnapshotChanged() {
    if (timer_kind_ == TimerKind::Idle) repinIfStale();
  }
  // `reset`: with a TCP reset (Transport::closeReset), for a cut-short response.
  void closeNow(bool reset = false);

  // TransportHandler
  void onRead(const char* data, size_t length) override;
  void onReadEnd(int status) override;
  void onDrained() override;
  void onWriteError(int status) override;
  void onClosed() override;

  bool http2() const { return h2_ != nullptr; }

  // MessageSink (requests)
  int onHead(const http::MessageHead& head) override;
  int onBody(const char* data, size_t length) override;
  int onTrailers(const http::MessageHead& trailers) override;
  bool onMessageComplete() override;

  // Intrusive list of the worker's sessions.
  DownstreamSession* prev_session = nullptr;
  DownstreamSession* next_session = nullptr;

 private:
  enum class State : uint8_t { Reading, Waiting, Tunnel, Http2, Lingering, Closed };

  // The first bytes of an `http2` listener's connection: ALPN h2, or the client preface.
  bool wantsHttp2(const char* data, size_t length) const;
  void enterHttp2(const char* data, size_t length);

  void handleOutcome(http::Parser::Outcome outcome);
  void replyAndClose(int status, const char* message);
  // One access-log line for a reply sent before any exchange began (bad head, timeout).
  void logLocalReply(int status, size_t bytes_out);
  // Ends the connection after a response that does not keep it alive.
  void endAfterResponse();
  void lingeringClose();
  void becomeIdle();
  // Between requests: serve the next one on the worker's current snapshot (new limits),
  // so a keep-alive connection does not hold an old snapshot alive.
  void repinIfStale();
  void flushAll();
  static void onTimer(void* self);
  static void continueAfterExchange(void* self);
  static void destroy(void* self);

  PinnedSnapshot* pinned_;
  const config::Listener* listener_;  // inside *pinned_
  net::TcpTransport tcp_;
  std::unique_ptr<tls::TlsTransport> tls_;  // over tcp_ on a `tls` listener
  // From the worker's pool on the first byte of a request, back to it when the
  // session idles between requests: an idle connection holds no parser state.
  http::Parser* parser_ = nullptr;
  bool parserIdle() const { return parser_ == nullptr || parser_->idle(); }
  void releaseParser();
  Timer timer_;
  Exchange* exchange_ = nullptr;
  std::unique_ptr<H2Connection> h2_;  // after enterHttp2()
  Counter* listener_gauge_ = nullptr;
  // The 4-byte-aligned and small fields together, flags as bits: an idle connection's
  // whole state should stay well under 512 bytes (see the static_assert in the .cc).
  net::SocketAddress peer_;
  // Low 32 bits of the loop time the drain began: differences stay right across a wrap
  // (a drain lasts minutes, not 49 days).
  uint32_t drain_start_ms_ = 0;
  uint32_t drain_spread_ms_ = 0;
  State state_ = State::Reading;
  enum class TimerKind : uint8_t { None, Header, Idle, Body, Linger, Drain };
  TimerKind timer_kind_ = TimerKind::None;
  bool close_after_ : 1 = false;
  bool keep_alive_next_ : 1 = false;
  bool continuation_pending_ : 1 = false;
  bool paused_for_backpressure_ : 1 = false;
  bool client_eof_ : 1 = false;  // the client half-closed while its request waited
  bool started_ : 1 = false;
  bool first_read_ : 1 = true;
  bool draining_ : 1 = false;
};

}  // namespace gw::proxy
