#pragma once
// A worker's proxy state: the snapshot it serves, its upstream runtime, its counters,
// its open downstream sessions, and a free list of exchanges (so a request allocates
// nothing once the worker is warm). Loop-confined except `stats`, which the control
// thread may read.

#include <cstdint>
#include <memory>
#include <vector>

#include "gateway/config/snapshot.h"
#include "gateway/core/free_list.h"
#include "gateway/core/loop_context.h"
#include "gateway/core/slab_pool.h"
#include "gateway/filter/worker_resources.h"
#include "gateway/http/parser.h"
#include "gateway/observe/access_log.h"
#include "gateway/proxy/stats.h"
#include "gateway/upstream/registry.h"

namespace gw::proxy {

class Downstream;
class DownstreamSession;
class Exchange;

// A snapshot pinned by this worker. Sessions and exchanges count their uses with a plain
// integer (no atomics on the request path); the shared_ptr is dropped when the last use
// of a replaced snapshot ends.
class PinnedSnapshot {
 public:
  explicit PinnedSnapshot(std::shared_ptr<const config::Snapshot> snapshot)
      : snapshot_(std::move(snapshot)) {}
  const config::Snapshot& get() const { return *snapshot_; }
  void retain() { ++uses_; }
  // True when this was the last use (and the pin is no longer current).
  bool release() { return --uses_ == 0 && !current_; }
  void setCurrent(bool current) { current_ = current; }
  bool unused() const { return uses_ == 0; }

 private:
  std::shared_ptr<const config::Snapshot> snapshot_;
  uint64_t uses_ = 0;
  bool current_ = true;
};

class ProxyContext {
 public:
  // `stats` outlives the context (its owner, the worker, lets other threads read it).
  ProxyContext(LoopContext& loop, std::shared_ptr<const config::Snapshot> snapshot,
               WorkerStats& stats);
  ~ProxyContext();
  ProxyContext(const ProxyContext&) = delete;
  ProxyContext& operator=(const ProxyContext&) = delete;

  LoopContext& loop() { return loop_; }
  // The context of the worker that runs `loop` (per-connection objects find it here
  // rather than keeping a pointer).
  static ProxyContext& of(const uv_loop_t* loop) {
    return *static_cast<ProxyContext*>(LoopContext::of(loop).app());
  }
  upstream::UpstreamRegistry& upstreams() { return upstreams_; }
  WorkerStats& stats() { return stats_; }
  // What filters keep on this worker (connections to Redis, ...).
  filter::WorkerResources& filterResources() { return filter_resources_; }
  // The worker stops: closes what filters keep (before the loop's last run).
  void closeFilterResources() { filter_resources_.close(); }
  // This worker's access log (configured from the current snapshot's [access_log]).
  observe::AccessLogWriter& accessLog() { return access_log_; }
  // This worker's OTLP span exporter (follows the current snapshot's [tracing]).
  observe::SpanExporter& spanExporter() { return span_exporter_; }
  // The worker stops: closes the exporter's connection (before the loop's last run).
  void closeSpanExporter() { span_exporter_.close(); }
  size_t freeExchanges() const { return free_exchanges_.size(); }
  size_t freeParsers() const { return free_parsers_.size(); }
  // Lets the pools of exchanges and parsers shrink after a burst (see FreeList), so
  // that what served a burst of requests goes back to the allocator; called periodically.
  // Returns how many objects were freed.
  size_t trimPools();

  PinnedSnapshot* pin() {
    current_->retain();
    return current_;
  }
  bool isCurrent(const PinnedSnapshot* pinned) const { return pinned == current_; }
  const config::Snapshot& currentSnapshot() const { return current_->get(); }
  void unpin(PinnedSnapshot* pinned);

  // Serve `snapshot` from now on. Sessions and exchanges keep the snapshot they pinned;
  // the upstream runtime keeps the state of endpoints whose identity did not change.
  void applySnapshot(std::shared_ptr<const config::Snapshot> snapshot);

  // Opens the current snapshot's access log file if it changed (errors are logged).
  void configureAccessLog();

  Exchange* acquireExchange(Downstream& downstream);
  void releaseExchange(Exchange* exchange);
  // Request parsers, pooled like exchanges: a session holds one only while a request
  // is read or served, not while it idles between requests.
  http::Parser* acquireParser(http::MessageSink* sink, const config::Limits& limits);
  void releaseParser(http::Parser* parser);

  // Where DownstreamSession objects live (see DownstreamSession::operator new).
  SlabPool& sessionSlabs() { return session_slabs_; }
  void addSession(DownstreamSession* session);
  void removeSession(DownstreamSession* session);
  size_t sessionCount() const { return session_count_; }

  // Graceful shutdown: every session drains (see DownstreamSession::startDrain).
  void drain();
  // Sessions accepted on a listener that is gone (name and address) drain.
  void drainSessionsOfRemovedListeners();
  // A cheap pseudo-random number (xorshift): for drain spreading, not for security.
  uint64_t random() {
    random_ ^= random_ << 13;
    random_ ^= random_ >> 7;
    random_ ^= random_ << 17;
    return random_;
  }
  bool draining() const { return draining_; }
  // Closes everything that is still open (drain timeout).
  void closeAll();

 private:
  SlabPool session_slabs_;  // first: freed last, after every session
  LoopContext& loop_;
  PinnedSnapshot* current_;
  std::vector<PinnedSnapshot*> retired_;
  upstream::UpstreamRegistry upstreams_;
  WorkerStats& stats_;
  filter::WorkerResources filter_resources_;
  observe::AccessLogWriter access_log_;
  observe::SpanExporter span_exporter_;
  FreeList<Exchange> free_exchanges_{1024};
  FreeList<http::Parser> free_parsers_{1024};
  DownstreamSession* sessions_ = nullptr;  // intrusive list
  size_t session_count_ = 0;
  bool draining_ = false;
  uint64_t random_ = 0x9e3779b97f4a7c15ull;
};

}  // namespace gw::proxy
