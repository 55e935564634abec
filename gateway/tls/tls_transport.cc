#include "gateway/tls/tls_transport.h"

#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include <algorithm>

namespace gw::tls {
namespace {

// What nginx answers too: a client that spoke plain HTTP learns why it got nothing.
constexpr char kPlainHttpReply[] =
    "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 49\r\n"
    "Connection: close\r\n\r\nThe plain HTTP request was sent to an HTTPS port\n";

// A staged-plaintext buffer that grew past this is given back once it is empty again,
// so an idle keep-alive connection does not keep a large response's worth of memory.
constexpr size_t kKeepCapacity = 16 * 1024;

}  // namespace

TlsTransport::TlsTransport(LoopContext& ctx, net::TcpTransport& lower, SSL* ssl,
                           TlsCounters* counters)
    : ctx_(ctx),
      lower_(lower),
      ssl_(ssl),
      in_(BIO_new(BIO_s_mem())),
      out_(BIO_new(BIO_s_mem())),
      counters_(counters),
      timer_(this, &TlsTransport::onHandshakeTimeout) {
  // An empty memory BIO reports "retry" rather than EOF, which is what OpenSSL needs to
  // return SSL_ERROR_WANT_READ.
  BIO_set_mem_eof_return(in_, -1);
  SSL_set_bio(ssl_, in_, out_);  // the SSL owns both BIOs now
  SSL_set_app_data(ssl_, this);
  lower_.setHandler(this);
}

TlsTransport::~TlsTransport() {
  ctx_.timers().disarm(timer_);
  ctx_.cancelCostly(first_flight_);
  SSL_free(ssl_);
}

TlsTransport* TlsTransport::fromSsl(SSL* ssl) {
  return static_cast<TlsTransport*>(SSL_get_app_data(ssl));
}

void TlsTransport::noteUnknownServerName() {
  if (counters_ != nullptr) counters_->sni_unknown.add();
}

void TlsTransport::startHandshake(uint64_t timeout_ms) {
  ctx_.timers().arm(timer_, timeout_ms);
  lower_.startReading();
  if (!SSL_is_server(ssl_)) advanceHandshake();  // the client speaks first
}

std::string TlsTransport::alpn() const {
  const unsigned char* data = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(ssl_, &data, &length);
  return std::string(reinterpret_cast<const char*>(data), data != nullptr ? length : 0);
}

// --- reading ---

void TlsTransport::onRead(const char* data, size_t length) {
  if (closing_ || ended_) return;
  // A memory BIO takes everything (it grows); the socket read slab is free again after.
  BIO_write(in_, data, static_cast<int>(length));
  if (!handshake_done_) {
    // A server's first flight (the ClientHello's key exchange and signature) takes its
    // turn behind other connections' I/O; the bytes wait in the BIO meanwhile.
    if (first_flight_.queued()) return;
    if (!hello_processed_ && SSL_is_server(ssl_) && !ctx_.takeCostlyTurn()) {
      ctx_.queueCostly(first_flight_, &TlsTransport::onCostlyTurn, this);
      return;
    }
    if (!stepHandshake()) return;
  }
  deliver();
}

void TlsTransport::onCostlyTurn(void* self) {
  auto* t = static_cast<TlsTransport*>(self);
  if (t->closing_ || t->ended_ || !t->stepHandshake()) return;
  t->deliver();
}

bool TlsTransport::stepHandshake() {
  bool done = advanceHandshake();
  // The costly part is over once OpenSSL has read the whole ClientHello, which may span
  // several reads (a post-quantum key share makes it larger than one segment).
  OSSL_HANDSHAKE_STATE state = SSL_get_state(ssl_);
  hello_processed_ = state != TLS_ST_BEFORE && state != TLS_ST_SR_CLNT_HELLO;
  return done;
}

bool TlsTransport::advanceHandshake() {
  ERR_clear_error();
  int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    handshake_done_ = true;
    ctx_.timers().disarm(timer_);
    if (counters_ != nullptr && SSL_is_server(ssl_)) {
      counters_->handshakes.add();
      if (SSL_session_reused(ssl_) == 1) counters_->resumed.add();
    }
    collectPeerCertificate();
    // A TLS 1.2 server's last flight (its Finished) must go now; a TLS 1.3 server has
    // only its session ticket left, which waits for the first response's write.
    output_may_wait_ = SSL_is_server(ssl_) && SSL_version(ssl_) == TLS1_3_VERSION;
    if (!output_may_wait_ && !sendEncrypted()) return false;
    if (!reading_) lower_.stopReading();
    if (handshake_callback_ != nullptr) handshake_callback_(handshake_owner_);
    return !closing_;
  }
  int error = SSL_get_error(ssl_, rc);
  if (error == SSL_ERROR_WANT_READ) {
    sendEncrypted();
    return false;
  }
  unsigned long code = ERR_peek_error();
  int reason = ERR_GET_REASON(code);
  Failure failure = Failure::Handshake;
  if (!SSL_is_server(ssl_)) {
    failure = Failure::Upstream;
  } else if (reason == SSL_R_HTTP_REQUEST || reason == SSL_R_HTTPS_PROXY_REQUEST) {
    failure = Failure::PlainHttp;
  } else if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE ||
             reason == SSL_R_CERTIFICATE_VERIFY_FAILED ||
             SSL_get_verify_result(ssl_) != X509_V_OK) {
    failure = Failure::ClientCertificate;
  }
  ERR_clear_error();
  if (failure == Failure::PlainHttp) {
    lower_.stage(kPlainHttpReply, sizeof kPlainHttpReply - 1);
    lower_.flush();
  } else {
    sendEncrypted();  // the alert, if OpenSSL wrote one
  }
  handshakeFailed(failure);
  return false;
}

void TlsTransport::handshakeFailed(Failure failure) {
  failure_ = failure;
  ctx_.timers().disarm(timer_);
  if (counters_ != nullptr) {
    switch (failure) {
      case Failure::Handshake:
        counters_->handshake_failures.add();
        break;
      case Failure::PlainHttp:
        counters_->plain_http.add();
        break;
      case Failure::Timeout:
        counters_->handshake_timeouts.add();
        break;
      case Failure::ClientCertificate:
        counters_->client_cert_failures.add();
        break;
      case Failure::Upstream:
        counters_->upstream_handshake_failures.add();
        break;
      case Failure::None:
        break;
    }
  }
  ended_ = true;
  lower_.stopReading();
  handler_->onReadEnd(failure == Failure::Timeout ? UV_ETIMEDOUT : UV_EPROTO);
}

void TlsTransport::onHandshakeTimeout(void* self) {
  auto* t = static_cast<TlsTransport*>(self);
  if (t->closing_ || t->handshake_done_ || t->ended_) return;
  t->handshakeFailed(Failure::Timeout);
}

void TlsTransport::deliver() {
  char* slab = ctx_.readSlab();
  while (reading_ && !closing_ && !ended_) {
    ERR_clear_error();
    int n = SSL_read(ssl_, slab, static_cast<int>(LoopContext::kReadSlabSize));
    if (n > 0) {
      handler_->onRead(slab, static_cast<size_t>(n));
      continue;
    }
    int error = SSL_get_error(ssl_, n);
    if (error == SSL_ERROR_WANT_READ) {
      if (lower_end_ != 0) {  // the socket ended (without close_notify) after this data
        ended_ = true;
        handler_->onReadEnd(lower_end_);
      }
      break;
    }
    ERR_clear_error();
    ended_ = true;
    // close_notify is a clean end of the stream; anything else is a broken one.
    handler_->onReadEnd(error == SSL_ERROR_ZERO_RETURN ? UV_EOF : UV_EPROTO);
    break;
  }
  // Reading may have produced output (a key update). A TLS 1.3 server's may wait for
  // its next write, which also carries the session ticket (RFC 8446 §4.6.1, §4.6.3).
  if (!closing_ && !output_may_wait_) sendEncrypted();
  if (!closing_) trimBuffers();
}

// A memory BIO keeps its largest size; an idle keep-alive connection should not keep a
// big read's or response's worth of memory, so an empty, grown BIO is replaced.
void TlsTransport::trimBuffers() {
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(in_, &mem);
  if (mem != nullptr && mem->max > kKeepCapacity && BIO_ctrl_pending(in_) == 0) {
    if (BIO* fresh = BIO_new(BIO_s_mem())) {
      BIO_set_mem_eof_return(fresh, -1);
      SSL_set0_rbio(ssl_, fresh);  // frees the old one
      in_ = fresh;
    }
  }
  mem = nullptr;
  BIO_get_mem_ptr(out_, &mem);
  if (mem != nullptr && mem->max > kKeepCapacity && BIO_ctrl_pending(out_) == 0) {
    if (BIO* fresh = BIO_new(BIO_s_mem())) {
      SSL_set0_wbio(ssl_, fresh);
      out_ = fresh;
    }
  }
}

bool TlsTransport::hasBufferedInput() const {
  return BIO_ctrl_pending(in_) > 0 || SSL_has_pending(ssl_) == 1;
}

void TlsTransport::onReadEnd(int status) {
  if (closing_ || ended_) return;
  if (!handshake_done_) {
    ended_ = true;
    ctx_.timers().disarm(timer_);
    handler_->onReadEnd(status);
    return;
  }
  lower_end_ = status;
  if (reading_) deliver();
}

void TlsTransport::startReading() {
  if (closing_) return;
  reading_ = true;
  lower_.startReading();
  // Plaintext may already wait in OpenSSL (read before the handler paused): hand it over
  // after the current callback, not from inside the handler's call to us.
  if (handshake_done_ && !ended_ && !deliver_pending_ && (hasBufferedInput() || lower_end_ != 0)) {
    deliver_pending_ = true;
    ctx_.defer(&TlsTransport::onDeferredDeliver, this);
  }
}

void TlsTransport::onDeferredDeliver(void* self) {
  auto* t = static_cast<TlsTransport*>(self);
  t->deliver_pending_ = false;
  if (!t->closing_) t->deliver();
}

void TlsTransport::stopReading() {
  reading_ = false;
  // During the handshake the socket must still be read; the handler just gets nothing.
  if (handshake_done_) lower_.stopReading();
}

// --- writing ---

void TlsTransport::stage(const char* data, size_t length) { plain_.append(data, length); }

void TlsTransport::stageCopy(const char* data, size_t length) { plain_.append(data, length); }

bool TlsTransport::flush() {
  if (closing_ || write_failed_) {
    plain_.clear();
    return false;
  }
  if (plain_.empty() || !handshake_done_) return true;
  if (!encryptStaged()) return false;
  bool ok = sendEncrypted();
  trimBuffers();
  return ok;
}

bool TlsTransport::encryptStaged() {
  size_t done = 0;
  while (done < plain_.size()) {
    ERR_clear_error();
    size_t chunk = std::min<size_t>(plain_.size() - done, 1u << 30);
    int n = SSL_write(ssl_, plain_.data() + done, static_cast<int>(chunk));
    if (n <= 0) {
      if (SSL_get_error(ssl_, n) == SSL_ERROR_WANT_READ) break;  // retried on the next flush
      ERR_clear_error();
      write_failed_ = true;
      plain_.clear();
      return false;
    }
    done += static_cast<size_t>(n);
  }
  plain_.erase(0, done);
  if (plain_.empty() && plain_.capacity() > kKeepCapacity) std::string().swap(plain_);
  return true;
}

bool TlsTransport::flushAndClose() {
  if (closing_) return true;
  // The last response and close_notify leave in one write.
  if (!write_failed_ && handshake_done_ && encryptStaged()) queueCloseNotify();
  bool ok = sendEncrypted();
  if (ok && lower_.queuedBytes() != 0) return false;  // output waits: the caller lingers
  close();
  return true;
}

bool TlsTransport::sendEncrypted() {
  char* data = nullptr;
  long length = BIO_get_mem_data(out_, &data);
  if (length <= 0) return !write_failed_;
  if (write_failed_ || closing_) {
    BIO_reset(out_);
    return false;
  }
  // flush() copies whatever the kernel does not take at once, so the BIO may be
  // emptied right after.
  lower_.stage(data, static_cast<size_t>(length));
  bool ok = lower_.flush();
  BIO_reset(out_);
  if (!ok) write_failed_ = true;
  return ok;
}

void TlsTransport::queueCloseNotify() {
  if (close_notify_sent_ || !handshake_done_ || write_failed_) return;
  close_notify_sent_ = true;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

void TlsTransport::sendCloseNotify() {
  queueCloseNotify();
  sendEncrypted();
}

void TlsTransport::shutdownWrite() {
  if (closing_) return;
  flush();
  sendCloseNotify();
  lower_.shutdownWrite();
}

void TlsTransport::close() {
  if (closing_) return;
  sendCloseNotify();  // best effort: a socket that cannot take it now closes anyway
  beginClose();
  lower_.close();
}

void TlsTransport::closeReset() {
  if (closing_) return;
  beginClose();  // no close_notify: it would tell the peer the stream ended whole
  lower_.closeReset();
}

void TlsTransport::beginClose() {
  closing_ = true;
  reading_ = false;
  plain_.clear();
  ctx_.timers().disarm(timer_);
  ctx_.cancelCostly(first_flight_);
}

void TlsTransport::onDrained() {
  if (!closing_) handler_->onDrained();
}

void TlsTransport::onWriteError(int status) {
  write_failed_ = true;
  if (!closing_) handler_->onWriteError(status);
}

void TlsTransport::onClosed() { handler_->onClosed(); }

void TlsTransport::collectPeerCertificate() {
  if (!SSL_is_server(ssl_)) return;
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (cert == nullptr || SSL_get_verify_result(ssl_) != X509_V_OK) return;
  // RFC 2253 form escapes control and non-ASCII bytes, so it is safe in a header.
  if (BIO* mem = BIO_new(BIO_s_mem())) {
    X509_NAME_print_ex(mem, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    char* text = nullptr;
    long length = BIO_get_mem_data(mem, &text);
    if (length > 0) peer_subject_.assign(text, static_cast<size_t>(length));
    BIO_free(mem);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (X509_digest(cert, EVP_sha256(), digest, &length) == 1) {
    static const char kHex[] = "0123456789abcdef";
    peer_fingerprint_.resize(2 * length);
    for (unsigned int i = 0; i < length; ++i) {
      peer_fingerprint_[2 * i] = kHex[digest[i] >> 4];
      peer_fingerprint_[2 * i + 1] = kHex[digest[i] & 15];
    }
  }
}

}  // namespace gw::tls
