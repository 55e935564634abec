#pragma once
// The HTTP/2 side of a client connection: an http2::Session over the DownstreamSession's
// transport, and one H2Stream per request stream. Each stream runs the same Exchange as
// an HTTP/1 request (router, filters, pools, metrics, access log).
//
// The exchange writes its response as HTTP/1 bytes (head, body, chunked framing, local
// replies) into the stream as if it were the connection; the stream parses them back
// with the response parser and submits the status, the fields (hop-by-hop ones dropped,
// names lowercased) and DATA. That keeps one response path in the exchange; the cost
// is one parse of a head we wrote ourselves per HTTP/2 response.
//
// Owned by its DownstreamSession (created when ALPN says h2 or the client preface
// arrives on an `http2` listener, freed with the session). Loop-confined.

#include <memory>
#include <string>

#include "gateway/http/parser.h"
#include "gateway/http2/session.h"
#include "gateway/proxy/downstream.h"
#include "gateway/proxy/proxy_context.h"

namespace gw::proxy {

class DownstreamSession;
class Exchange;
class H2Connection;

// The client preface of HTTP/2 with prior knowledge (RFC 9113 §3.4).
inline constexpr char kH2Preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

class H2Stream final : public Downstream,
                       public http2::StreamHandler,
                       public net::Transport,
                       public http::MessageSink {
 public:
  H2Stream(H2Connection& connection, int32_t id, bool head_request);
  // Starts the exchange on the request head. False when the stream was answered or
  // reset at once (it lives on until onStreamClose).
  void start(const http::MessageHead& head);

  // Downstream
  net::Transport& transport() override { return *this; }
  const tls::TlsTransport* tls() const override;
  const config::Listener& listener() const override;
  const net::SocketAddress& peer() const override;
  const char* protocolName(int) const override { return "HTTP/2.0"; }
  bool isHttp2() const override { return true; }
  void failRequest(int status, const char* reason) override {
    fail_status_ = status;
    fail_reason_ = reason;
  }
  bool requestInputOwned() const override { return true; }
  void exchangeDone(bool) override;
  void abort() override;
  void pauseReading() override { paused_ = true; }
  void resumeReading() override;
  void resumeParsing() override;
  void enterTunnel() override { abort(); }  // no upgrades over HTTP/2
  bool closeAfterResponse() const override { return false; }
  void setCloseAfterResponse() override {}
  bool decideCloseAfterResponse() override { return false; }

  // http2::StreamHandler
  void onData(const char* data, size_t length) override;
  void onRequestEnd() override;
  void onRequestTrailers(const http::MessageHead& trailers) override;
  void onStreamClose(uint32_t error_code) override;
  void onStreamDrained() override;

  // net::Transport: what the exchange writes (HTTP/1 bytes, parsed as they come)
  void startReading() override {}
  void stopReading() override {}
  void stage(const char* data, size_t length) override { stageCopy(data, length); }
  void stageCopy(const char* data, size_t length) override;
  bool flush() override;
  bool discardStaged() override;
  size_t queuedBytes() const override;
  void shutdownWrite() override {}
  void close() override { abort(); }
  bool closing() const override { return reset_; }

  // http::MessageSink (the exchange's response)
  int onHead(const http::MessageHead& head) override;
  int onBody(const char* data, size_t length) override;
  int onTrailers(const http::MessageHead& trailers) override;
  bool onMessageComplete() override;

 private:
  // The exchange rejected the request (failRequest): answer, or reset when too late.
  void rejected();
  void deliverBody(const char* data, size_t length);
  void deliverEnd();
  void giveWindow(size_t length);
  // Hands the staged response head, and the body that came with it, to the codec.
  void submitStaged();
  void endResponseBody();

  H2Connection& connection_;
  int32_t id_;
  Exchange* exchange_ = nullptr;
  http::Parser response_parser_;
  std::string held_;                // request body that arrived while a filter paused the request
  http2::ResponseFields trailers_;  // the response's trailer fields, when it has some
  size_t unconsumed_ = 0;
  uint64_t body_bytes_ = 0;
  int fail_status_ = 0;
  const char* fail_reason_ = nullptr;
  bool head_request_;
  bool filter_paused_ = false;
  bool held_end_ = false;
  bool paused_ = false;  // the upstream is not taking the body: hold the window
  bool exchange_done_ = false;
  bool reset_ = false;
  bool response_head_sent_ = false;
  bool response_has_body_ = false;
  // The response head, and what of the body came in the same write, wait here until the
  // exchange flushes (its commit point): until then a broken upstream body can still
  // become a 502 (discardStaged) rather than a reset stream, as over HTTP/1.
  bool head_staged_ = false;
  bool staged_end_ = false;
  http2::ResponseFields staged_head_;
  std::string staged_body_;
};

class H2Connection final : public http2::SessionHandler {
 public:
  H2Connection(DownstreamSession& session, ProxyContext& ctx, net::Transport& transport);
  ~H2Connection() override;

  // `data`: the bytes read so far (the client preface first).
  void start(const char* data, size_t length) { codec_.start(data, length); }
  void onRead(const char* data, size_t length) { codec_.onRead(data, length); }
  void onDrained() { codec_.onTransportDrained(); }
  // GOAWAY with the last stream id; open streams finish, then the connection closes.
  void drain() { codec_.shutdown(); }
  void closeAllStreams() { codec_.closeAllStreams(); }
  bool busy() const { return codec_.sendScheduled(); }
  size_t openStreams() const { return codec_.openStreams(); }
  bool stalled() { return codec_.stalled(); }

  DownstreamSession& session() { return session_; }
  ProxyContext& ctx() { return ctx_; }
  http2::Session& codec() { return codec_; }

  // http2::SessionHandler
  http2::StreamHandler* onRequest(int32_t stream_id, const http::MessageHead& head,
                                  bool end_stream) override;
  void onSessionDone() override;

 private:
  DownstreamSession& session_;
  ProxyContext& ctx_;
  http2::Session codec_;
};

}  // namespace gw::proxy
