#pragma once
// Upstream HTTP/2 (a pool with `protocol = "h2c"` or `"h2"`): one nghttp2 client session
// per connection, shared by many requests of one worker to one endpoint.
//
// The exchange does not know it: it gets an H2UpstreamStream where it would get an HTTP/1
// UpstreamConnection (both are UpstreamLinks, with the same UpstreamUser callbacks). It
// writes the request as HTTP/1 bytes (head, then the body with Content-Length or chunked
// framing) into the stream's transport; the stream parses them back (http::Parser) and
// submits HEADERS and DATA. The response comes back to the exchange as HTTP/1 bytes: a
// status line and the fields, the body chunked (or as is when the upstream gave a
// Content-Length), trailers as chunked trailers, END_STREAM as the last chunk.
//
// Flow control: response DATA is given back to the server's window (consume) only once
// the exchange has taken it; while the exchange has stopped reading (its client is slow),
// what arrives waits in the stream, at most one stream window.
//
// Ownership: the EndpointRuntime lists its open H2UpstreamConnections; each connection owns its
// transports and frees itself after the transport's close callback. A stream belongs to
// its user (the exchange) until release()/close(), and to its connection until nghttp2
// closed it; it is freed (deferred) when neither holds it. Loop-confined. nghttp2 is
// never driven from inside its own callbacks: sends run after the read that caused them
// or from a deferred task.

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gateway/core/loop_context.h"
#include "gateway/core/timer.h"
#include "gateway/http/parser.h"
#include "gateway/http2/fields.h"
#include "gateway/net/tcp_transport.h"
#include "gateway/tls/tls_transport.h"
#include "gateway/upstream/connection.h"

namespace gw::upstream {

class H2UpstreamConnection;

class H2UpstreamStream final : public UpstreamLink,
                               public net::Transport,
                               public http::MessageSink {
 public:
  H2UpstreamStream(LoopContext& ctx, H2UpstreamConnection* connection, UpstreamUser* user);
  H2UpstreamStream(const H2UpstreamStream&) = delete;
  H2UpstreamStream& operator=(const H2UpstreamStream&) = delete;

  // UpstreamLink (close() is also net::Transport's)
  bool reused() const override { return unprocessed_; }
  void release() override { detach(); }
  void close() override { detach(); }

  // net::Transport: the exchange's request bytes, and its control of response reading.
  void startReading() override;
  void stopReading() override { paused_ = true; }
  void stage(const char* data, size_t length) override { stageCopy(data, length); }
  void stageCopy(const char* data, size_t length) override;
  using net::Transport::stageCopy;
  bool flush() override;
  size_t queuedBytes() const override { return out_.size() - out_sent_; }
  void shutdownWrite() override {}
  bool closing() const override { return detached_; }

  // http::MessageSink: the request, parsed back from the exchange's HTTP/1 bytes.
  int onHead(const http::MessageHead& head) override;
  int onBody(const char* data, size_t length) override;
  bool onMessageComplete() override;

 private:
  friend class H2UpstreamConnection;
  void detach();
  // Response bytes for the user; held while it does not read. `data_bytes`: how many of
  // them are DATA payload, given back to the window once the user took them.
  void deliver(const char* data, size_t length, size_t data_bytes);
  void deliverHeld();
  // The stream failed (reset, connection lost): the user hears onUpstreamReadEnd.
  void fail(int status);
  void freeLater();

  LoopContext& ctx_;
  H2UpstreamConnection* connection_;  // null once the connection is gone
  UpstreamUser* user_;
  int32_t id_ = 0;  // 0: not submitted yet
  http::Parser request_parser_;
  http2::RequestFields fields_;
  std::string out_;  // request body not yet taken by nghttp2: [out_sent_, size)
  size_t out_sent_ = 0;
  std::string held_;  // response bytes the user did not read yet
  size_t held_data_ = 0;
  std::string scratch_;          // response head or chunk being built
  std::string trailers_;         // response trailers as "name: value\r\n" lines
  int status_ = 0;               // response status (0: no head yet)
  bool waiting_ = false;         // joined a connecting connection: onUpstreamConnected due
  bool head_ready_ = false;      // the request head is parsed (fields_)
  bool head_request_ = false;    // HEAD: the response has no body
  bool out_end_ = false;         // the request body is complete
  bool deferred_ = false;        // the data provider returned NGHTTP2_ERR_DEFERRED
  bool over_high_ = false;       // queued body passed the high-water mark
  bool request_failed_ = false;  // the request bytes did not parse
  bool paused_ = false;          // the user stopped reading
  bool delivering_ = false;
  bool final_head_ = false;  // a final (non-1xx) response head was delivered
  bool chunked_ = false;     // the response body goes to the user chunked
  bool has_length_ = false;  // the response head has a content-length
  bool response_ended_ = false;
  bool sent_end_ = false;  // our END_STREAM went to nghttp2
  bool delivery_scheduled_ = false;
  bool closed_ = false;       // nghttp2 closed the stream (or never had it)
  bool detached_ = false;     // the user released or closed it
  bool unprocessed_ = false;  // refused / beyond GOAWAY: safe to retry
  bool free_scheduled_ = false;
};

class H2UpstreamConnection final : public net::TransportHandler {
 public:
  H2UpstreamConnection(LoopContext& ctx, EndpointRuntime& endpoint);
  ~H2UpstreamConnection() override;
  H2UpstreamConnection(const H2UpstreamConnection&) = delete;
  H2UpstreamConnection& operator=(const H2UpstreamConnection&) = delete;

  // Starts connecting; false (and `error`) when it failed at once (the connection then
  // frees itself).
  bool connect(int& error);
  // Streams may be added: connected (SETTINGS seen) or connecting, not going away, and
  // under both the pool's and the server's stream limit.
  bool ready() const { return ready_; }
  bool hasRoom() const;
  // A new stream for `user` (onUpstreamConnected follows when not ready()).
  H2UpstreamStream* addStream(UpstreamUser* user);
  // No new streams; closes once the open ones end (or now when there are none).
  void drain();

  // TransportHandler
  void onRead(const char* data, size_t length) override;
  void onReadEnd(int status) override;
  void onDrained() override { send(); }
  void onWriteError(int status) override;
  void onClosed() override;

 private:
  friend class H2UpstreamStream;
  static void onConnected(void* self, int status);
  static void onHandshakeDone(void* self);
  static void onIdleTimeout(void* self);
  static void onDeferredSend(void* self);

  void startSession();
  // Submits the stream's request once its head is parsed and the connection is ready.
  void submit(H2UpstreamStream* s);
  void resumeData(H2UpstreamStream* s);
  void resetStream(H2UpstreamStream* s, uint32_t error_code);
  void consume(H2UpstreamStream* s, size_t length);
  void forget(H2UpstreamStream* s);
  void scheduleSend();
  void send();
  // The connection failed or ended: every stream hears it, then the transport closes.
  void fail(int status);
  void closeTransport();
  void updateIdle();
  // Streams waiting for the connection hear onUpstreamConnected(0).
  void announceReady();

  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t name_length, const uint8_t* value, size_t value_length, uint8_t,
                      void* self);
  static int onDataChunk(nghttp2_session*, uint8_t flags, int32_t stream_id, const uint8_t* data,
                         size_t length, void* self);
  static int onStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* self);
  static ssize_t readBody(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source* source, void* self);
  H2UpstreamStream* find(int32_t id) const;

  LoopContext& ctx_;
  EndpointRuntime& endpoint_;
  net::TcpTransport tcp_;
  std::unique_ptr<tls::TlsTransport> tls_;
  net::Transport& transport_;
  nghttp2_session* session_ = nullptr;
  std::vector<H2UpstreamStream*> streams_;  // every stream not yet freed from the connection
  std::vector<H2UpstreamStream*> drained_;  // tell onUpstreamDrained after the send
  Timer idle_timer_;
  bool handshaking_ = false;
  bool ready_ = false;       // the server's first SETTINGS arrived
  bool announce_ = false;    // ready_ became true during this read
  bool going_away_ = false;  // GOAWAY received or sent, or draining: no new streams
  bool failed_ = false;      // fail() ran: the transport is closing
  bool in_recv_ = false;     // inside nghttp2_session_mem_recv
  bool sending_ = false;
  bool send_scheduled_ = false;
  bool counted_failure_ = false;
};

}  // namespace gw::upstream
