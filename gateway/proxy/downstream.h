#pragma once
// Downstream: what an Exchange needs from the client side of one request. An HTTP/1
// connection (DownstreamSession, one exchange at a time) and an HTTP/2 stream
// (H2Stream, one exchange per stream) implement it, so routing, filters, pools, metrics
// and the access log are the same code for both.
//
// Contract: loop-confined; every method is called by the exchange that the downstream
// acquired, from inside the exchange's own callbacks. Methods that end the request
// (exchangeDone, abort) act after the current callback returns, or close transports
// whose close callbacks come later, so the exchange may go on touching its own state.

#include <string>

#include "gateway/config/snapshot.h"
#include "gateway/net/address.h"
#include "gateway/net/transport.h"
#include "gateway/tls/tls_transport.h"

namespace gw::proxy {

class Downstream {
 public:
  virtual ~Downstream() = default;

  // Where the exchange writes the response as HTTP/1 bytes (head, body, framing). For
  // HTTP/1 that is the connection; an HTTP/2 stream turns those bytes into frames.
  virtual net::Transport& transport() = 0;
  // The TLS layer of the client connection, else null.
  virtual const tls::TlsTransport* tls() const = 0;
  virtual const config::Listener& listener() const = 0;
  virtual const net::SocketAddress& peer() const = 0;
  // "HTTP/1.1", "HTTP/2.0", ... for the access log; `minor` is the request's version.
  virtual const char* protocolName(int minor) const { return minor == 0 ? "HTTP/1.0" : "HTTP/1.1"; }
  // An HTTP/2 stream (a response head without body becomes one HEADERS frame).
  virtual bool isHttp2() const { return false; }

  // Rejects the request from inside onRequestHead/onRequestBody (which then return
  // MessageSink::kReject): the downstream answers `status` itself.
  virtual void failRequest(int status, const char* reason) = 0;
  // True while request bytes passed to the exchange move once its callback returns (the
  // exchange must copy rather than stage a pointer).
  virtual bool requestInputOwned() const = 0;

  // The response has been handed over. `keep_alive`: the connection may carry another
  // request (HTTP/1).
  virtual void exchangeDone(bool keep_alive) = 0;
  // Sends the response bytes staged so far; false when the connection broke. Over TLS,
  // an HTTP/1 response that ends its connection leaves with the close instead (see
  // DownstreamSession::flushResponse), so that it and close_notify share one write.
  virtual bool flushResponse() { return transport().flush(); }
  // Something failed mid-response: the client must see a truncated response.
  virtual void abort() = 0;
  // Upstream backpressure on the request body.
  virtual void pauseReading() = 0;
  virtual void resumeReading() = 0;
  // A filter paused the request after its head and the exchange went on: deliver the body.
  virtual void resumeParsing() = 0;
  // The exchange switched protocols (HTTP/1 only).
  virtual void enterTunnel() = 0;
  // Whether the connection switches protocols after this request (see
  // http::Parser::setUpgrade; HTTP/1 only, an HTTP/2 request never upgrades).
  virtual void setUpgrade(bool /*upgrade*/) {}
  // Whether the response ends the connection (HTTP/1 Connection: close).
  virtual bool closeAfterResponse() const = 0;
  virtual void setCloseAfterResponse() = 0;
  virtual bool decideCloseAfterResponse() = 0;
};

}  // namespace gw::proxy
