#include "gateway/upstream/connection.h"

namespace gw::upstream {
namespace {

// The exchange's upstream_connect_timeout normally ends a slow handshake first.
constexpr uint64_t kUpstreamHandshakeTimeoutMs = 30'000;

}  // namespace

std::unique_ptr<tls::TlsTransport> makeUpstreamTls(LoopContext& ctx, net::TcpTransport& tcp,
                                                   const tls::ClientContext* tls,
                                                   const std::string& name, bool alpn_h2) {
  if (tls == nullptr) return nullptr;
  SSL* ssl = tls->newConnection(name);
  if (ssl == nullptr) return nullptr;
  static const unsigned char kAlpnH2[] = {2, 'h', '2'};
  if (alpn_h2) SSL_set_alpn_protos(ssl, kAlpnH2, sizeof kAlpnH2);  // h2 only: no fallback
  return std::make_unique<tls::TlsTransport>(ctx, tcp, ssl, nullptr);
}

UpstreamConnection::UpstreamConnection(LoopContext& ctx, EndpointRuntime& endpoint)
    : ctx_(ctx),
      endpoint_(endpoint),
      tcp_(ctx),
      tls_(makeUpstreamTls(ctx, tcp_, endpoint.tls_.get(), endpoint.tls_name_, false)),
      transport_(tls_ ? static_cast<net::Transport&>(*tls_) : tcp_),
      idle_timer_(this, &onIdleTimeout) {
  link_transport_ = &transport_;
  transport_.setHandler(this);
}

void UpstreamConnection::onConnected(void* self, int status) {
  auto* c = static_cast<UpstreamConnection*>(self);
  if (status == 0 && c->tls_ != nullptr) {
    // Connected means usable: for TLS, after the handshake (or its failure, which
    // arrives as onReadEnd).
    c->handshaking_ = true;
    c->tls_->onHandshake(&UpstreamConnection::onHandshakeDone, c);
    c->tls_->startHandshake(kUpstreamHandshakeTimeoutMs);
    return;
  }
  if (status != 0) c->endpoint_.connect_failures_++;
  if (c->user_ != nullptr) c->user_->onUpstreamConnected(status);
}

void UpstreamConnection::onHandshakeDone(void* self) {
  auto* c = static_cast<UpstreamConnection*>(self);
  c->handshaking_ = false;
  if (c->user_ != nullptr) c->user_->onUpstreamConnected(0);
}

void UpstreamConnection::release() {
  user_ = nullptr;
  if (transport_.closing()) return;
  if (endpoint_.idle_count_ >= endpoint_.max_idle_ || transport_.queuedBytes() > 0) {
    close();
    return;
  }
  // Keep reading while idle: an upstream that closes an idle connection is noticed
  // (EOF) and the connection leaves the pool before anyone picks it.
  transport_.startReading();
  endpoint_.pushIdle(this);
  ctx_.timers().arm(idle_timer_, endpoint_.idle_timeout_ms_);
}

void UpstreamConnection::close() {
  user_ = nullptr;
  if (idle_) endpoint_.removeIdle(this);
  ctx_.timers().disarm(idle_timer_);
  transport_.close();
}

void UpstreamConnection::onIdleTimeout(void* self) {
  static_cast<UpstreamConnection*>(self)->close();
}

void UpstreamConnection::onRead(const char* data, size_t length) {
  if (user_ != nullptr) {
    user_->onUpstreamRead(data, length);
    return;
  }
  // Bytes on an idle connection belong to no request: the connection is unusable.
  close();
}

void UpstreamConnection::onReadEnd(int status) {
  if (handshaking_) {  // the TLS handshake failed: report it as a failed connect
    handshaking_ = false;
    endpoint_.connect_failures_++;
    if (user_ != nullptr) user_->onUpstreamConnected(status < 0 ? status : UV_EPROTO);
    return;
  }
  if (user_ != nullptr) {
    user_->onUpstreamReadEnd(status);
    return;
  }
  close();
}

void UpstreamConnection::onDrained() {
  if (user_ != nullptr) user_->onUpstreamDrained();
}

void UpstreamConnection::onWriteError(int status) {
  if (user_ != nullptr) {
    user_->onUpstreamWriteError(status);
    return;
  }
  close();
}

void UpstreamConnection::onClosed() {
  endpoint_.open_connections_--;
  // A deferred TLS delivery must run (and see the transport closed) before the free.
  if (tls_ != nullptr && tls_->deferredPending()) {
    ctx_.defer([](void* self) { delete static_cast<UpstreamConnection*>(self); }, this);
    return;
  }
  delete this;
}

EndpointRuntime::EndpointRuntime(LoopContext& ctx, SlabPool& connection_slabs, std::string key,
                                 net::SocketAddress address)
    : ctx_(ctx), connection_slabs_(connection_slabs), key_(std::move(key)), address_(address) {}

EndpointRuntime::~EndpointRuntime() = default;

UpstreamLink* EndpointRuntime::takeIdle(UpstreamUser* user) {
  if (http2()) return takeH2Stream(user);
  UpstreamConnection* c = idle_head_;
  if (c == nullptr) return nullptr;
  removeIdle(c);
  ctx_.timers().disarm(c->idle_timer_);
  c->reused_ = true;
  c->user_ = user;
  return c;
}

UpstreamLink* EndpointRuntime::connect(UpstreamUser* user, int& error) {
  if (http2()) return connectH2(user, error);
  auto* c = new (connection_slabs_) UpstreamConnection(ctx_, *this);
  open_connections_++;  // until its close callback, however the connect ends
  c->user_ = user;
  error = (tls_ != nullptr && c->tls_ == nullptr)
              ? UV_ENOMEM
              : c->tcp_.connect(address_, c, &UpstreamConnection::onConnected);
  if (error != 0) {
    connect_failures_++;
    c->user_ = nullptr;
    c->transport_.close();  // frees itself in the close callback
    return nullptr;
  }
  created_++;
  return c;
}

void EndpointRuntime::closeIdle() {
  while (idle_head_ != nullptr) idle_head_->close();
  closeIdleH2();
}

void EndpointRuntime::pushIdle(UpstreamConnection* c) {
  c->idle_ = true;
  c->idle_prev_ = nullptr;
  c->idle_next_ = idle_head_;
  if (idle_head_) idle_head_->idle_prev_ = c;
  idle_head_ = c;
  idle_count_++;
}

void EndpointRuntime::removeIdle(UpstreamConnection* c) {
  if (!c->idle_) return;
  if (c->idle_prev_)
    c->idle_prev_->idle_next_ = c->idle_next_;
  else
    idle_head_ = c->idle_next_;
  if (c->idle_next_) c->idle_next_->idle_prev_ = c->idle_prev_;
  c->idle_prev_ = c->idle_next_ = nullptr;
  c->idle_ = false;
  idle_count_--;
}

}  // namespace gw::upstream
