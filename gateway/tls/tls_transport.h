#pragma once
// TlsTransport: the Transport interface over OpenSSL, driven by a TcpTransport beneath
// it (the layering of Node's TLSWrap). Ciphertext from the socket goes into a memory
// BIO, OpenSSL decrypts into the loop's read slab and the handler gets plaintext;
// staged plaintext is encrypted on flush() into a memory BIO whose bytes go to the TCP
// transport in one write. Nothing blocks; the codec above cannot tell it from TCP.
//
// Contract (in addition to transport.h):
// - The TcpTransport outlives this object (the owner holds both); this object is the
//   TcpTransport's handler and forwards onClosed() once the socket is closed.
// - While the handshake runs, the socket is read regardless of startReading(); the
//   handler sees its first onRead() only after the handshake. A handshake that does not
//   finish within the timeout, or fails, ends with onReadEnd(<0): the owner closes. Why
//   it failed is in failure(), and counted in the TlsCounters.
// - shutdownWrite() and close() send close_notify first; a close_notify from the peer
//   arrives as onReadEnd(UV_EOF).
// - Loop-confined, like every Transport.

#include <openssl/ssl.h>

#include <string>

#include "gateway/core/loop_context.h"
#include "gateway/core/timer.h"
#include "gateway/net/tcp_transport.h"
#include "gateway/net/transport.h"
#include "gateway/tls/counters.h"

namespace gw::tls {

class TlsTransport final : public net::Transport, private net::TransportHandler {
 public:
  enum class Failure { None, Handshake, PlainHttp, Timeout, ClientCertificate, Upstream };

  // Takes ownership of `ssl` (from ServerContext/ClientContext::newConnection()).
  TlsTransport(LoopContext& ctx, net::TcpTransport& lower, SSL* ssl, TlsCounters* counters);
  ~TlsTransport() override;
  TlsTransport(const TlsTransport&) = delete;
  TlsTransport& operator=(const TlsTransport&) = delete;

  // Starts the handshake clock (and, client side, sends the ClientHello). Call once the
  // socket is connected or accepted.
  void startHandshake(uint64_t timeout_ms);
  // Runs once when the handshake completes (client side: the connection is usable).
  // A failed handshake is reported as onReadEnd(<0) instead.
  using HandshakeCallback = void (*)(void* owner);
  void onHandshake(HandshakeCallback callback, void* owner) {
    handshake_callback_ = callback;
    handshake_owner_ = owner;
  }
  bool handshakeDone() const { return handshake_done_; }
  Failure failure() const { return failure_; }
  bool resumed() const { return handshake_done_ && SSL_session_reused(ssl_) == 1; }
  // "TLSv1.3", ... (after the handshake).
  const char* protocolVersion() const { return handshake_done_ ? SSL_get_version(ssl_) : ""; }
  // The SNI the client sent, or "".
  const char* serverName() const {
    const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
    return name != nullptr ? name : "";
  }
  // "http/1.1" or "" (after the handshake).
  std::string alpn() const;
  // A verified client certificate (mTLS): RFC 2253 subject and SHA-256 of the DER, hex.
  const std::string& peerSubject() const { return peer_subject_; }
  const std::string& peerFingerprint() const { return peer_fingerprint_; }

  // The transport an SSL belongs to (for OpenSSL callbacks), or null.
  static TlsTransport* fromSsl(SSL* ssl);
  void noteUnknownServerName();

  // Transport
  void startReading() override;
  void stopReading() override;
  void stage(const char* data, size_t length) override;
  void stageCopy(const char* data, size_t length) override;
  using Transport::stageCopy;
  bool stageCopies() const override { return true; }
  bool flush() override;
  bool discardStaged() override {
    plain_.clear();
    return true;
  }
  bool flushAndClose() override;
  size_t queuedBytes() const override { return lower_.queuedBytes() + plain_.size(); }
  void shutdownWrite() override;
  void close() override;
  void closeReset() override;
  bool closing() const override { return closing_; }

 private:
  // TransportHandler of the TCP transport beneath.
  void onRead(const char* data, size_t length) override;
  void onReadEnd(int status) override;
  void onDrained() override;
  void onWriteError(int status) override;
  void onClosed() override;

  bool advanceHandshake();
  bool stepHandshake();
  void handshakeFailed(Failure failure);
  void deliver();
  bool sendEncrypted();
  bool encryptStaged();
  void queueCloseNotify();
  void sendCloseNotify();
  void beginClose();  // what close() and closeReset() share, up to closing the lower layer
  void collectPeerCertificate();
  bool hasBufferedInput() const;
  void trimBuffers();
  static void onHandshakeTimeout(void* self);
  static void onDeferredDeliver(void* self);
  static void onCostlyTurn(void* self);

  LoopContext& ctx_;
  net::TcpTransport& lower_;
  SSL* ssl_;
  BIO* in_;   // ciphertext from the peer (OpenSSL reads it)
  BIO* out_;  // ciphertext to the peer (OpenSSL writes it)
  TlsCounters* counters_;
  Timer timer_;
  LoopContext::CostlyWork first_flight_;  // queued while the first flight waits its turn
  std::string plain_;                     // staged plaintext, encrypted on flush()
  std::string peer_subject_;
  std::string peer_fingerprint_;
  HandshakeCallback handshake_callback_ = nullptr;
  void* handshake_owner_ = nullptr;
  int lower_end_ = 0;  // the socket's read end (EOF/error) not yet passed on
  Failure failure_ = Failure::None;
  bool handshake_done_ = false;
  bool reading_ = false;  // the handler wants reads
  bool closing_ = false;
  bool write_failed_ = false;
  bool close_notify_sent_ = false;
  bool ended_ = false;  // onReadEnd was delivered
  bool deliver_pending_ = false;
  bool output_may_wait_ = false;  // a TLS 1.3 server: tickets go with the next write
  bool hello_processed_ = false;  // a server has read the ClientHello and answered it

 public:
  // The owner must not free this object while a deferred delivery is scheduled (it
  // runs in the loop's check phase; defer the free behind it).
  bool deferredPending() const { return deliver_pending_; }
};

}  // namespace gw::tls
