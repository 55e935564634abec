#pragma once
// One client connection: reads requests with the HTTP/1 parser, runs one exchange at a
// time (pipelined requests wait, unparsed, until the previous response is done, so
// responses go out in order), and enforces the listener's limits and timeouts.
//
// Lifecycle: created on accept, freed after its transport's close callback (deferred if
// a continuation is still scheduled). Loop-confined.

#include <string>

#include "gateway/config/snapshot.h"
#include "gateway/core/timer.h"
#include "gateway/http/parser.h"
#include "gateway/net/tcp_transport.h"
#include "gateway/proxy/proxy_context.h"
#include "gateway/tls/tls_transport.h"

namespace gw::proxy {

class Exchange;

class DownstreamSession final : public net::TransportHandler, public http::MessageSink {
 public:
  DownstreamSession(ProxyContext& ctx, PinnedSnapshot* pinned, const config::Listener& listener);
  DownstreamSession(const DownstreamSession&) = delete;
  DownstreamSession& operator=(const DownstreamSession&) = delete;

  // Accepts from `server` and starts reading; on failure the session closes itself.
  void start(uv_stream_t* server);

  ProxyContext& ctx() { return ctx_; }
  // The client's byte stream: the TCP socket, or TLS over it on a `tls` listener.
  net::Transport& transport() { return transport_; }
  // The TLS layer on a `tls` listener (client certificate, ALPN), else null.
  const tls::TlsTransport* tls() const { return tls_.get(); }
  const config::Listener& listener() const { return listener_; }
  const net::SocketAddress& peer() const { return peer_; }
  const std::string& peerIp() const { return peer_ip_; }
  http::Parser& parser() { return parser_; }

  // --- called by the current exchange ---
  // The response has been handed to the transport. `keep_alive`: the connection may
  // carry another request. Continues with pipelined input after the current callback.
  void exchangeDone(bool keep_alive);
  // Something failed mid-response: close now so the client sees a truncated message.
  void abort();
  // Upstream backpressure on the request body.
  void pauseReading();
  void resumeReading();
  // The exchange switched protocols: from now on bytes are piped both ways.
  void enterTunnel();
  // The response will end the connection (sent with Connection: close).
  bool closeAfterResponse() const { return close_after_; }
  void setCloseAfterResponse() { close_after_ = true; }

  // Graceful shutdown (from ProxyContext::drain).
  void drain();
  void closeNow();

  // TransportHandler
  void onRead(const char* data, size_t length) override;
  void onReadEnd(int status) override;
  void onDrained() override;
  void onWriteError(int status) override;
  void onClosed() override;

  // MessageSink (requests)
  int onHead(const http::MessageHead& head) override;
  int onBody(const char* data, size_t length) override;
  bool onMessageComplete() override;

  // Intrusive list of the worker's sessions.
  DownstreamSession* prev_session = nullptr;
  DownstreamSession* next_session = nullptr;

 private:
  enum class State { Reading, Waiting, Tunnel, Lingering, Closed };

  void handleOutcome(http::Parser::Outcome outcome);
  void replyAndClose(int status, const char* message);
  void lingeringClose();
  void becomeIdle();
  void flushAll();
  static void onTimer(void* self);
  static void continueAfterExchange(void* self);
  static void destroy(void* self);

  ProxyContext& ctx_;
  PinnedSnapshot* pinned_;
  const config::Listener& listener_;
  net::TcpTransport tcp_;
  std::unique_ptr<tls::TlsTransport> tls_;  // over tcp_ on a `tls` listener
  net::Transport& transport_;               // tls_ or tcp_
  http::Parser parser_;
  Timer timer_;
  net::SocketAddress peer_;
  std::string peer_ip_;
  Exchange* exchange_ = nullptr;
  State state_ = State::Reading;
  bool close_after_ = false;
  bool keep_alive_next_ = false;
  bool continuation_pending_ = false;
  bool paused_for_backpressure_ = false;
  bool started_ = false;
  enum class TimerKind { None, Header, Idle, Body, Linger, Drain } timer_kind_ = TimerKind::None;
};

}  // namespace gw::proxy
