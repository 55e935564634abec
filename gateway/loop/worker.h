#pragma once
// A worker: one thread, one uv loop, its own SO_REUSEPORT listening sockets (the kernel
// spreads connections across workers), its own upstream pools and counters. A request
// lives and dies on one worker. The control thread talks to it only by message
// (a mailbox drained on uv_async), never by sharing mutable state.

#include <uv.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gateway/config/snapshot.h"
#include "gateway/core/loop_context.h"
#include "gateway/proxy/proxy_context.h"

namespace gw::loop {

class Worker {
 public:
  // `bind_addresses[i]` is where listener i binds (port 0 already resolved).
  // `on_exit` runs on the worker thread after its loop has finished; `on_applied` runs
  // on the worker thread once a snapshot from requestApply() is in force.
  Worker(unsigned index, std::shared_ptr<const config::Snapshot> snapshot,
         std::vector<net::SocketAddress> bind_addresses, std::function<void()> on_exit,
         std::function<void()> on_applied = {});
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts the thread and waits until its listeners are bound. Returns "" or an error.
  std::string start();
  // Thread-safe: stop accepting, finish in-flight requests, close after drain_timeout.
  void requestDrain();
  // Thread-safe: serve `snapshot` from now on (new requests; in-flight ones finish on
  // the snapshot they started with). Listeners are reconciled by name and address:
  // unchanged ones keep their sockets, removed ones stop accepting, new ones open.
  void requestApply(std::shared_ptr<const config::Snapshot> snapshot,
                    std::vector<net::SocketAddress> bind_addresses);
  // Thread-safe: reopen the access log file (SIGUSR1, after logrotate moved it).
  void requestReopenLogs();
  void join();
  // Readable from any thread while the worker runs.
  const proxy::WorkerStats& stats() const { return stats_; }
  unsigned index() const { return index_; }
  // Upstream connection pool figures of one endpoint runtime (per worker), sampled by
  // the worker every 250 ms (see onLagTimer).
  struct EndpointSample {
    std::string endpoint;  // the endpoint key, "host:port"
    uint64_t open = 0, idle = 0, created = 0, connect_failures = 0;
  };
  // Thread-safe: the last sample of every endpoint runtime of this worker.
  std::vector<EndpointSample> endpointSamples();
  // Thread-safe: open downstream connections per listener name (the blast radius of a
  // reload that removes or moves a listener).
  std::map<std::string, uint64_t> connectionsByListener();

 private:
  struct ListenerHandle {
    uv_tcp_t tcp;
    Worker* worker;
    const config::Listener* config;
    net::SocketAddress address;
    proxy::Counter* connections = nullptr;  // in listener_connections_
    bool open = false;
  };
  struct Message {
    enum class Kind { Drain, Apply, ReopenLogs } kind;
    std::shared_ptr<const config::Snapshot> snapshot;
    std::vector<net::SocketAddress> bind_addresses;
  };

  static void threadMain(void* self);
  void run();
  std::string bindListeners();
  std::string openListener(const config::Listener& config, const net::SocketAddress& address);
  void closeListener(ListenerHandle& handle);
  void apply(Message& message);
  void beginDrain();
  static void onAsync(uv_async_t* handle);
  static void onConnection(uv_stream_t* server, int status);
  static void onDrainTimeout(void* self);
  // Loop lag: a timer every kLagIntervalMs measures how late it fires (and samples the
  // loop's gauges for /metrics and /debug/workers).
  static void onLagTimer(void* self);
  void armLagTimer();

  unsigned index_;
  std::shared_ptr<const config::Snapshot> snapshot_;
  std::vector<net::SocketAddress> bind_addresses_;
  std::function<void()> on_exit_;
  std::function<void()> on_applied_;
  uv_thread_t thread_{};
  bool thread_started_ = false;

  uv_loop_t loop_{};
  std::unique_ptr<LoopContext> ctx_;
  std::unique_ptr<proxy::ProxyContext> proxy_;
  std::vector<std::unique_ptr<ListenerHandle>> listeners_;
  std::vector<std::unique_ptr<ListenerHandle>> closing_listeners_;
  uv_async_t async_{};
  std::unique_ptr<Timer> drain_timer_;
  std::unique_ptr<Timer> lag_timer_;
  uint64_t lag_armed_ns_ = 0;
  uint64_t lag_window_max_us_ = 0;
  unsigned lag_ticks_ = 0;
  size_t freed_since_trim_ = 0;  // pooled objects freed since the last malloc_trim
  std::mutex samples_mutex_;     // guards endpoint_samples_ (the lag timer and scrapes only)
  std::vector<EndpointSample> endpoint_samples_;
  bool draining_ = false;
  proxy::WorkerStats stats_;

  std::mutex mutex_;  // guards the mailbox and the start handshake (control path only)
  std::condition_variable started_cv_;
  bool start_done_ = false;
  std::string start_error_;
  std::vector<Message> mailbox_;
  bool mailbox_open_ = false;  // async_ is initialised and not closed: sends may go
  // By listener name; entries are never removed (sessions may outlive their listener).
  std::map<std::string, std::unique_ptr<proxy::Counter>> listener_connections_;
};

}  // namespace gw::loop
