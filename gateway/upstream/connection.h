#pragma once
// Upstream connections and the per-worker, per-endpoint pool of idle ones.
//
// Ownership: an UpstreamConnection is owned by its EndpointRuntime while idle and by
// the exchange using it while busy; that exchange must either release() it back or
// close() it. The connection frees itself after its handle's close callback, and the
// EndpointRuntime outlives all its connections (the worker destroys the registry only
// after its loop has closed every handle).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gateway/config/snapshot.h"
#include "gateway/core/loop_context.h"
#include "gateway/core/slab_pool.h"
#include "gateway/core/timer.h"
#include "gateway/net/address.h"
#include "gateway/net/tcp_transport.h"
#include "gateway/tls/context.h"
#include "gateway/tls/tls_transport.h"

namespace gw::upstream {

class EndpointRuntime;

// The TLS layer of a new upstream connection for a pool with `tls` (null without, or
// when the session cannot be made); `alpn_h2`: offer only "h2" (an HTTP/2 pool).
std::unique_ptr<tls::TlsTransport> makeUpstreamTls(LoopContext& ctx, net::TcpTransport& tcp,
                                                   const tls::ClientContext* tls,
                                                   const std::string& name, bool alpn_h2);
class H2UpstreamConnection;

// What the exchange using a connection implements.
class UpstreamUser {
 public:
  virtual ~UpstreamUser() = default;
  virtual void onUpstreamConnected(int status) = 0;
  virtual void onUpstreamRead(const char* data, size_t length) = 0;
  virtual void onUpstreamReadEnd(int status) = 0;
  virtual void onUpstreamDrained() = 0;
  virtual void onUpstreamWriteError(int status) = 0;
};

// What an exchange holds while it uses the upstream for one request: an HTTP/1
// connection (UpstreamConnection), or one stream of an upstream HTTP/2 connection
// (H2UpstreamStream, h2_connection.h), which takes the request and gives back the response as
// the same HTTP/1 bytes, so the exchange does not know which one it has.
class UpstreamLink {
 public:
  virtual ~UpstreamLink() = default;
  // Where the exchange writes the request and controls reading (startReading/
  // stopReading) of the response; a connection's only after it is connected.
  net::Transport& transport() { return *link_transport_; }
  // True when a failure before any response byte means the upstream cannot have acted
  // on the request (a stale keep-alive connection; an HTTP/2 stream refused or beyond
  // a GOAWAY's last stream id): the request may be retried on a fresh connection.
  virtual bool reused() const = 0;
  // The request is over and the link may carry another. The user is detached.
  virtual void release() = 0;
  // Abandons the link (closes the connection, resets the stream); the user is detached
  // and hears nothing more.
  virtual void close() = 0;
  // Whether a response may still be read after a write failed: on an HTTP/1 connection
  // an upstream that answered early (a 401 or 413 before the whole body) and closed has
  // its answer in the socket ahead of the reset. A stream that cannot be written is gone.
  virtual bool readableAfterWriteError() const { return false; }

 protected:
  net::Transport* link_transport_ = nullptr;
};

// In the registry's connection slabs, like client sessions (see SlabPool): idle pooled
// connections opened in a burst would otherwise pin the heap pages the burst's requests
// leave behind.
class UpstreamConnection final : public net::TransportHandler,
                                 public UpstreamLink,
                                 public SlabAllocated {
 public:
  UpstreamConnection(LoopContext& ctx, EndpointRuntime& endpoint);
  UpstreamConnection(const UpstreamConnection&) = delete;
  UpstreamConnection& operator=(const UpstreamConnection&) = delete;

  // TCP, or TLS over it for a pool with `tls` (connected = handshake done).
  net::Transport& transport() { return transport_; }
  EndpointRuntime& endpoint() { return endpoint_; }
  // True when it was taken from the idle pool (it may have been closed by the upstream
  // in the meantime, which is why such a request may be retried on a fresh connection).
  bool reused() const override { return reused_; }
  bool readableAfterWriteError() const override { return true; }
  void setUser(UpstreamUser* user) { user_ = user; }

  // Back to the idle pool (or closed when the pool is full). The user is detached.
  void release() override;
  // Closes the connection; the user is detached and hears nothing more.
  void close() override;

  // TransportHandler
  void onRead(const char* data, size_t length) override;
  void onReadEnd(int status) override;
  void onDrained() override;
  void onWriteError(int status) override;
  void onClosed() override;

 private:
  friend class EndpointRuntime;
  static void onConnected(void* self, int status);
  static void onHandshakeDone(void* self);
  static void onIdleTimeout(void* self);

  LoopContext& ctx_;
  EndpointRuntime& endpoint_;
  net::TcpTransport tcp_;
  std::unique_ptr<tls::TlsTransport> tls_;  // for a pool with `tls`
  net::Transport& transport_;               // tls_ or tcp_
  bool handshaking_ = false;
  UpstreamUser* user_ = nullptr;
  Timer idle_timer_;
  UpstreamConnection* idle_prev_ = nullptr;  // intrusive idle list (LIFO)
  UpstreamConnection* idle_next_ = nullptr;
  bool idle_ = false;
  bool reused_ = false;
};

// Per-worker runtime state of one endpoint, keyed by its stable identity (the endpoint
// key), so it survives config reloads that keep the endpoint.
class EndpointRuntime {
 public:
  // `connection_slabs` hold its UpstreamConnections; they outlive the endpoint's.
  EndpointRuntime(LoopContext& ctx, SlabPool& connection_slabs, std::string key,
                  net::SocketAddress address);
  ~EndpointRuntime();

  const std::string& key() const { return key_; }
  const net::SocketAddress& address() const { return address_; }
  void setAddress(const net::SocketAddress& address) { address_ = address; }
  // Upstream TLS (null: plain TCP); `name` is the endpoint's host, for SNI/verification.
  void setTls(std::shared_ptr<const tls::ClientContext> tls, std::string name) {
    tls_ = std::move(tls);
    tls_name_ = std::move(name);
  }
  void setPoolLimits(uint32_t max_idle, uint64_t idle_timeout_ms) {
    max_idle_ = max_idle;
    idle_timeout_ms_ = idle_timeout_ms;
  }
  // The pool's `protocol`: HTTP/2 endpoints hand out streams of shared connections.
  void setProtocol(config::Pool::Protocol protocol, uint32_t max_streams_per_connection) {
    protocol_ = protocol;
    max_streams_ = max_streams_per_connection;
  }
  bool http2() const { return protocol_ != config::Pool::Protocol::Http1; }
  uint32_t maxStreamsPerConnection() const { return max_streams_; }
  uint64_t idleTimeoutMs() const { return idle_timeout_ms_; }

  // HTTP/1: the most recently used idle connection, or nullptr. HTTP/2: a new stream on
  // a connected connection with a free stream slot, or nullptr. The caller becomes its
  // user.
  UpstreamLink* takeIdle(UpstreamUser* user);
  // Starts a new connection (HTTP/2: or joins one still connecting that has a free
  // slot); `user` hears onUpstreamConnected. nullptr if it failed at once (`error` set
  // to the libuv code).
  UpstreamLink* connect(UpstreamUser* user, int& error);
  // Closes every idle connection (shutdown, endpoint removed); HTTP/2 connections close
  // once their open streams end.
  void closeIdle();

  size_t idleCount() const { return idle_count_; }
  // Open upstream connections (idle, busy or connecting), for circuit breakers.
  uint32_t openConnections() const { return open_connections_; }

  // Balancing state, kept by PoolRuntime and the exchange (loop-confined).
  uint32_t active_requests = 0;  // exchanges using this endpoint now (least_request)
  struct Outlier {
    uint32_t consecutive_errors = 0;
    uint32_t ejections = 0;  // how many times so far (the ejection time grows with it)
    uint64_t ejected_until_ms = 0;
    // While back, `ejections` drops by one per base_ejection_time since this moment.
    uint64_t decay_from_ms = 0;
    bool ejected = false;
    uint64_t ramp_start_ms = 0;  // slow start: when it last joined (added, returned, healed)
    // Response-head latencies of this window, log2 buckets of milliseconds: bucket 0 is
    // < 1ms, bucket k is [2^(k-1), 2^k) ms, the last one everything above.
    static constexpr size_t kLatencyBuckets = 18;
    uint32_t latency[kLatencyBuckets] = {};
    uint32_t latency_samples = 0;
  } outlier;
  uint64_t created() const { return created_; }
  uint64_t connectFailures() const { return connect_failures_; }

 private:
  friend class UpstreamConnection;
  friend class H2UpstreamConnection;
  void pushIdle(UpstreamConnection* c);
  // HTTP/2 pools (h2_connection.cc).
  UpstreamLink* takeH2Stream(UpstreamUser* user);
  UpstreamLink* connectH2(UpstreamUser* user, int& error);
  void closeIdleH2();
  void removeIdle(UpstreamConnection* c);

  LoopContext& ctx_;
  SlabPool& connection_slabs_;
  std::string key_;
  net::SocketAddress address_;
  std::shared_ptr<const tls::ClientContext> tls_;
  std::string tls_name_;
  uint32_t max_idle_ = 1024;
  uint64_t idle_timeout_ms_ = 60'000;
  UpstreamConnection* idle_head_ = nullptr;
  size_t idle_count_ = 0;
  uint64_t created_ = 0;
  uint64_t connect_failures_ = 0;
  uint32_t open_connections_ = 0;
  config::Pool::Protocol protocol_ = config::Pool::Protocol::Http1;
  uint32_t max_streams_ = 100;
  std::vector<H2UpstreamConnection*> h2_connections_;  // open HTTP/2 connections (h2_connection.cc)
};

}  // namespace gw::upstream
