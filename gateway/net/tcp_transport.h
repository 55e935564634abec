#pragma once
// Transport over a libuv TCP handle. The transport owns its uv_tcp_t; its owner keeps
// the transport alive until TransportHandler::onClosed(). libuv accepts, connects,
// writes and closes; reads come through the loop's ReadPoller (edge-triggered, in
// arrival order: see gateway/core/read_poller.h).

#include <uv.h>

#include "gateway/core/loop_context.h"
#include "gateway/net/address.h"
#include "gateway/net/transport.h"

namespace gw::net {

class TcpTransport final : public Transport {
 public:
  explicit TcpTransport(LoopContext& ctx);
  ~TcpTransport() override;

  uv_tcp_t* handle() { return &tcp_; }
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }

  // Accepts a pending connection from `server`. Returns a libuv error code.
  int accept(uv_stream_t* server);
  // Starts connecting; `done(owner, status)` runs on the loop when connected or failed.
  using ConnectCallback = void (*)(void* owner, int status);
  int connect(const SocketAddress& address, void* owner, ConnectCallback done);

  void startReading() override;
  void stopReading() override;
  void stage(const char* data, size_t length) override;
  void stageCopy(const char* data, size_t length) override;
  using Transport::stageCopy;
  bool flush() override;
  bool discardStaged() override {
    releaseBatch();
    return true;
  }
  size_t queuedBytes() const override { return tcp_.write_queue_size; }
  void shutdownWrite() override;
  // Sends what is queued, then FIN, then closes the handle.
  void shutdownThenClose();
  void close() override;
  void closeReset() override;
  bool closing() const override { return closing_; }

  bool reading() const { return reading_; }
  // The peer's address (for X-Forwarded-For); empty address if unknown.
  SocketAddress peerAddress() const;

 private:
  // The loop's ReadPoller says the socket may be readable (or a posted read is due).
  static void onReadable(void* self, uint32_t events);
  static void onWatchFailed(void* self);
  void postRead();
  void beginClose();  // what close() and closeReset() share, up to closing the handle
  static void onWriteCb(uv_write_t* req, int status);
  static void onConnectCb(uv_connect_t* req, int status);
  static void onCloseCb(uv_handle_t* handle);
  static void onShutdownCb(uv_shutdown_t* req, int status);

  // The loop's context is LoopContext::of(tcp_.loop): not stored, one pointer less
  // per connection.
  LoopContext& ctx() const { return LoopContext::of(tcp_.loop); }
  uv_tcp_t tcp_;
  // Staged output, from the loop's pool: held only until flush(), so an idle
  // connection keeps no staging memory.
  WriteBatch* batch_ = nullptr;
  void releaseBatch() {
    if (batch_ != nullptr) ctx().returnWriteBatch(batch_);
    batch_ = nullptr;
  }
  struct ConnectState;
  bool reading_ = false;
  bool watched_ = false;     // registered with the loop's ReadPoller
  bool read_ready_ = false;  // bytes (or EOF) may wait unread: no edge will announce them
  bool read_posted_ = false;
  bool closing_ = false;
  bool above_high_water_ = false;
  bool write_failed_ = false;
  bool close_after_shutdown_ = false;
};

// Creates a TCP socket with SO_REUSEPORT (libuv 1.44 has no flag for it), binds it and
// wraps it in `server` (which this initialises); the caller then calls uv_listen.
// Returns a libuv error code.
int bindReusePort(uv_tcp_t* server, const SocketAddress& address);

// The address a bound socket actually got (resolves port 0).
SocketAddress boundAddress(const uv_tcp_t* server);

}  // namespace gw::net
