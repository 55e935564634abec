#include "gateway/loop/worker.h"

#include <algorithm>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "gateway/core/log.h"
#include "gateway/net/tcp_transport.h"
#include "gateway/proxy/downstream_session.h"

namespace gw::loop {
namespace {
constexpr int kListenBacklog = 511;
constexpr uint64_t kLagIntervalMs = 250;
// Pooled objects freed (summed over ticks) after which malloc_trim runs: a burst's worth.
constexpr size_t kTrimAfterFreed = 64;
constexpr unsigned kLagWindowTicks = 40;  // the max lag gauge covers the last 10 s
}  // namespace

Worker::Worker(unsigned index, std::shared_ptr<const config::Snapshot> snapshot,
               std::vector<net::SocketAddress> bind_addresses, std::function<void()> on_exit,
               std::function<void()> on_applied)
    : index_(index),
      snapshot_(std::move(snapshot)),
      bind_addresses_(std::move(bind_addresses)),
      on_exit_(std::move(on_exit)),
      on_applied_(std::move(on_applied)) {}

Worker::~Worker() { join(); }

std::string Worker::start() {
  if (uv_thread_create(&thread_, &Worker::threadMain, this) != 0) return "cannot start thread";
  thread_started_ = true;
  std::unique_lock lock(mutex_);
  started_cv_.wait(lock, [this] { return start_done_; });
  return start_error_;
}

void Worker::join() {
  if (thread_started_) {
    uv_thread_join(&thread_);
    thread_started_ = false;
  }
}

void Worker::requestDrain() {
  std::lock_guard lock(mutex_);
  // Once draining, the worker closed async_ (and its loop may be gone): a send then
  // would write to a closed descriptor, which libuv answers with abort().
  if (!mailbox_open_) return;
  mailbox_.push_back(Message{Message::Kind::Drain, nullptr, {}});
  uv_async_send(&async_);
}

void Worker::requestApply(std::shared_ptr<const config::Snapshot> snapshot,
                          std::vector<net::SocketAddress> bind_addresses) {
  std::lock_guard lock(mutex_);
  if (!mailbox_open_) return;  // draining: a new config no longer applies
  mailbox_.push_back(Message{Message::Kind::Apply, std::move(snapshot), std::move(bind_addresses)});
  uv_async_send(&async_);
}

void Worker::requestReopenLogs() {
  {
    std::lock_guard lock(mutex_);
    mailbox_.push_back(Message{Message::Kind::ReopenLogs, nullptr, {}});
  }
  uv_async_send(&async_);
}

void Worker::armLagTimer() {
  lag_armed_ns_ = uv_hrtime();
  ctx_->timers().arm(*lag_timer_, kLagIntervalMs);
}

void Worker::onLagTimer(void* self) {
  auto* w = static_cast<Worker*>(self);
  uint64_t elapsed_us = (uv_hrtime() - w->lag_armed_ns_) / 1000;
  uint64_t lag_us = elapsed_us > kLagIntervalMs * 1000 ? elapsed_us - kLagIntervalMs * 1000 : 0;
  if (w->lag_ticks_++ % kLagWindowTicks == 0) w->lag_window_max_us_ = 0;
  if (lag_us > w->lag_window_max_us_) w->lag_window_max_us_ = lag_us;
  proxy::WorkerStats& s = w->stats_;
  s.loop_lag_us.set(lag_us);
  s.loop_lag_max_us.set(std::max(w->lag_window_max_us_, lag_us));
  s.loop_handles.set(w->loop_.active_handles);
  s.sessions_open.set(w->proxy_->sessionCount());
  // What served a burst goes back to the allocator within a few ticks (the pools halve
  // each tick), and free pages go back to the system (glibc keeps them otherwise): after
  // every burst's worth of frees, and once more when the pools have emptied, so that
  // the last halves of a burst do not stay resident while the worker idles.
  size_t freed = w->proxy_->trimPools() + w->ctx_->trimPools();
  w->freed_since_trim_ += freed;
  bool pools_emptied = freed > 0 && w->proxy_->freeExchanges() == 0 &&
                       w->proxy_->freeParsers() == 0 && w->ctx_->pooledWriteBatches() == 0;
  if (w->freed_since_trim_ >= kTrimAfterFreed || pools_emptied) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
    w->freed_since_trim_ = 0;
  }
  s.exchanges_pooled.set(w->proxy_->freeExchanges());
  s.parsers_pooled.set(w->proxy_->freeParsers());
  s.session_slabs.set(w->proxy_->sessionSlabs().slabs());
  std::vector<EndpointSample> samples;
  for (const auto& [key, e] : w->proxy_->upstreams().endpoints()) {
    samples.push_back(
        {e->key(), e->openConnections(), e->idleCount(), e->created(), e->connectFailures()});
  }
  {
    std::lock_guard lock(w->samples_mutex_);
    w->endpoint_samples_.swap(samples);
  }
  if (!w->draining_) w->armLagTimer();
}

void Worker::threadMain(void* self) { static_cast<Worker*>(self)->run(); }

void Worker::run() {
  uv_loop_init(&loop_);
  ctx_ = std::make_unique<LoopContext>(&loop_);
  proxy_ = std::make_unique<proxy::ProxyContext>(*ctx_, snapshot_, stats_);
  drain_timer_ = std::make_unique<Timer>(this, &Worker::onDrainTimeout);
  lag_timer_ = std::make_unique<Timer>(this, &Worker::onLagTimer);
  armLagTimer();
  uv_async_init(&loop_, &async_, &Worker::onAsync);
  async_.data = this;
  {
    std::lock_guard lock(mutex_);
    mailbox_open_ = true;
  }

  std::string error = bindListeners();
  {
    std::lock_guard lock(mutex_);
    start_error_ = error;
    start_done_ = true;
  }
  started_cv_.notify_all();
  if (!error.empty()) beginDrain();

  uv_run(&loop_, UV_RUN_DEFAULT);

  // Everything that kept the loop alive is closed; close the loop's own handles and
  // what filters keep here (their handles never keep the loop alive on their own).
  proxy_->closeFilterResources();
  proxy_->closeSpanExporter();
  ctx_->close();
  uv_run(&loop_, UV_RUN_DEFAULT);
  drain_timer_.reset();
  lag_timer_.reset();
  proxy_.reset();  // writes what is left of the access log
  ctx_.reset();
  int rc = uv_loop_close(&loop_);
  if (rc != 0) log::error("worker loop did not close cleanly", {log::num("worker", index_)});
  if (on_exit_) on_exit_();
}

std::string Worker::bindListeners() {
  for (size_t i = 0; i < snapshot_->listeners.size(); ++i) {
    std::string error = openListener(snapshot_->listeners[i], bind_addresses_[i]);
    if (!error.empty()) return error;
  }
  return "";
}

std::string Worker::openListener(const config::Listener& config,
                                 const net::SocketAddress& address) {
  auto handle = std::make_unique<ListenerHandle>();
  handle->worker = this;
  handle->config = &config;
  handle->address = address;
  {
    std::lock_guard lock(mutex_);
    auto& gauge = listener_connections_[config.name];
    if (!gauge) gauge = std::make_unique<proxy::Counter>();
    handle->connections = gauge.get();
  }
  uv_tcp_init(&loop_, &handle->tcp);
  handle->tcp.data = handle.get();
  handle->open = true;
  int rc = net::bindReusePort(&handle->tcp, address);
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&handle->tcp), kListenBacklog,
                   &Worker::onConnection);
  }
  listeners_.push_back(std::move(handle));
  if (rc != 0) return "cannot listen on " + config.listen + ": " + uv_strerror(rc);
  return "";
}

void Worker::closeListener(ListenerHandle& handle) {
  if (!handle.open) return;
  handle.open = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&handle.tcp), nullptr);
}

void Worker::apply(Message& message) {
  if (draining_) return;
  const config::Snapshot& next = *message.snapshot;
  // Listeners: keep the ones whose name and address did not change (same socket, no
  // rebind), close the rest, open the new ones.
  std::vector<std::unique_ptr<ListenerHandle>> kept;
  std::vector<bool> reused(next.listeners.size(), false);
  for (auto& handle : listeners_) {
    bool keep = false;
    for (size_t i = 0; i < next.listeners.size() && !keep; ++i) {
      if (!reused[i] && handle->open && next.listeners[i].name == handle->config->name &&
          message.bind_addresses[i] == handle->address) {
        handle->config = &next.listeners[i];  // new limits apply to new connections
        reused[i] = true;
        keep = true;
      }
    }
    if (keep) {
      kept.push_back(std::move(handle));
    } else {
      closeListener(*handle);
      closing_listeners_.push_back(std::move(handle));  // freed with the worker
    }
  }
  listeners_ = std::move(kept);
  snapshot_ = message.snapshot;
  bind_addresses_ = message.bind_addresses;
  for (size_t i = 0; i < next.listeners.size(); ++i) {
    if (reused[i]) continue;
    std::string error = openListener(next.listeners[i], bind_addresses_[i]);
    if (!error.empty()) {
      log::error("listener failed to start",
                 {log::num("worker", index_), log::str("error", error)});
    }
  }
  proxy_->applySnapshot(message.snapshot);
  proxy_->drainSessionsOfRemovedListeners();
  if (on_applied_) on_applied_();
}

std::vector<Worker::EndpointSample> Worker::endpointSamples() {
  std::lock_guard lock(samples_mutex_);
  return endpoint_samples_;
}

std::map<std::string, uint64_t> Worker::connectionsByListener() {
  std::map<std::string, uint64_t> out;
  std::lock_guard lock(mutex_);
  for (const auto& [name, gauge] : listener_connections_) out[name] = gauge->get();
  return out;
}

void Worker::onAsync(uv_async_t* handle) {
  auto* self = static_cast<Worker*>(handle->data);
  std::vector<Message> messages;
  {
    std::lock_guard lock(self->mutex_);
    messages.swap(self->mailbox_);
  }
  for (Message& m : messages) {
    if (m.kind == Message::Kind::Drain) self->beginDrain();
    if (m.kind == Message::Kind::Apply) self->apply(m);
    if (m.kind == Message::Kind::ReopenLogs) self->proxy_->accessLog().reopen();
  }
}

void Worker::beginDrain() {
  if (draining_) return;
  draining_ = true;
  ctx_->timers().disarm(*lag_timer_);  // the loop may end once the sessions are gone
  for (auto& l : listeners_) closeListener(*l);
  {
    std::lock_guard lock(mutex_);
    mailbox_open_ = false;  // before the close: no send can reach a closing handle
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
  proxy_->drain();
  ctx_->timers().arm(*drain_timer_, snapshot_->limits.drain_timeout_ms);
}

void Worker::onDrainTimeout(void* self) {
  auto* w = static_cast<Worker*>(self);
  if (w->proxy_->sessionCount() > 0) {
    log::warn("drain timeout: closing remaining connections",
              {log::num("worker", w->index_),
               log::num("connections", static_cast<long long>(w->proxy_->sessionCount()))});
  }
  w->proxy_->closeAll();
}

void Worker::onConnection(uv_stream_t* server, int status) {
  auto* listener = static_cast<ListenerHandle*>(server->data);
  Worker* self = listener->worker;
  if (status < 0) return;
  proxy::ProxyContext& proxy = *self->proxy_;
  auto* session =
      new (proxy.sessionSlabs()) proxy::DownstreamSession(proxy, proxy.pin(), *listener->config);
  session->countIn(listener->connections);
  bool over_limit = proxy.sessionCount() > listener->config->limits.max_connections;
  session->start(server);
  if (over_limit) {
    proxy.stats().connections_refused.add();
    session->closeNow();
  }
}

}  // namespace gw::loop
