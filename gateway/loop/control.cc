#include "gateway/loop/control.h"

#include <csignal>

#include "gateway/config/loader.h"
#include "gateway/core/log.h"
#include "gateway/net/tcp_transport.h"
#include "gateway/observe/heap_profile.h"
#include "gateway/observe/process_stats.h"

namespace gw::loop {

namespace {
void closeHandle(void* handle) { uv_close(static_cast<uv_handle_t*>(handle), nullptr); }
}  // namespace

int runGateway(std::shared_ptr<const config::Snapshot> snapshot, config::Overrides overrides) {
  Control control(std::move(snapshot), std::move(overrides));
  return control.run();
}

bool Control::resolveListenAddresses(const config::Snapshot& snapshot,
                                     std::vector<net::SocketAddress>& out,
                                     std::vector<uv_tcp_t*>& placeholders) {
  // Port 0 means "any free port", but every worker must bind the same one: bind one
  // SO_REUSEPORT placeholder here (not listening, so it takes no connections) to learn
  // the port, and keep it until the workers have bound theirs. On reload, a listener
  // that keeps its name and `listen` keeps the port it already has.
  for (const config::Listener& l : snapshot.listeners) {
    net::SocketAddress address = l.address;
    bool kept = false;
    if (snapshot_ != nullptr && &snapshot != snapshot_.get()) {
      for (size_t i = 0; i < snapshot_->listeners.size() && i < bind_addresses_.size(); ++i) {
        if (snapshot_->listeners[i].name == l.name && snapshot_->listeners[i].listen == l.listen) {
          address = bind_addresses_[i];
          kept = true;
        }
      }
    }
    if (!kept && address.port() == 0) {
      auto* tcp = new uv_tcp_t;
      uv_tcp_init(&loop_, tcp);
      placeholders.push_back(tcp);
      int rc = net::bindReusePort(tcp, address);
      if (rc != 0) {
        log::error("cannot bind listener",
                   {log::str("listener", l.name), log::str("address", l.listen),
                    log::str("error", uv_strerror(rc))});
        return false;
      }
      address = net::boundAddress(tcp);
    }
    out.push_back(address);
  }
  return true;
}

int Control::run() {
  observe::markProcessStart();
  uv_loop_init(&loop_);
  ctx_ = std::make_unique<LoopContext>(&loop_);
  int exit_code = 0;

  loadOverrides();
  std::vector<uv_tcp_t*> placeholders;
  bool ok = resolveListenAddresses(*snapshot_, bind_addresses_, placeholders);
  config_fingerprint_ = config::readConfigFingerprint(snapshot_->source);
  debounce_ = std::make_unique<Timer>(this, &Control::onReloadDebounce);
  canary_timer_ = std::make_unique<Timer>(this, &Control::onCanaryTick);
  shutdown_delay_ = std::make_unique<Timer>(this, &Control::onShutdownDelay);
  snapshot_ = withCanaries(snapshot_);

  uv_async_init(&loop_, &worker_exit_, &Control::onWorkerExit);
  worker_exit_.data = this;
  uv_async_init(&loop_, &worker_applied_, &Control::onWorkerApplied);
  worker_applied_.data = this;

  if (ok) {
    for (unsigned i = 0; i < snapshot_->workers; ++i) {
      workers_.push_back(std::make_unique<Worker>(
          i, snapshot_, bind_addresses_,
          [this] {
            workers_exited_.fetch_add(1);
            uv_async_send(&worker_exit_);
          },
          [this] {
            applied_count_.fetch_add(1);
            uv_async_send(&worker_applied_);
          }));
      std::string error = workers_.back()->start();
      if (!error.empty()) {
        log::error("worker failed to start", {log::num("worker", i), log::str("error", error)});
        ok = false;
        break;
      }
    }
  }
  for (uv_tcp_t* tcp : placeholders) {
    uv_close(reinterpret_cast<uv_handle_t*>(tcp),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  }

  if (ok) startHealthChecks();

  if (ok && snapshot_->admin.address) {
    admin::AdminHandlers handlers;
    handlers.token = [this] { return snapshot_->admin.token; };
    handlers.ready = [this] { return !draining_.load(); };
    handlers.config = [this] { return configJson(); };
    handlers.diff = [this](const std::string& toml) { return diffJson(toml); };
    handlers.stats_json = [this] { return statsJson(); };
    handlers.metrics = [this] { return metricsText(); };
    handlers.debug_workers = [this] { return debugWorkersJson(); };
    handlers.debug_memory = [this] { return debugMemoryJson(); };
    handlers.heap_dump = [] {
      observe::HeapDumpResult r = observe::dumpHeapProfile();
      std::string json;
      if (r.status == 200) {
        json = "{\"path\":\"";
        log::appendJsonEscaped(json, r.path);
      } else {
        json = "{\"error\":\"";
        log::appendJsonEscaped(json, r.error);
      }
      json += "\"}\n";
      return admin::AdminReply{r.status, json};
    };
    handlers.reload = [this] { return reload("admin API"); };
    handlers.services = [this] { return servicesJson(); };
    handlers.set_active = [this](const std::string& service, const std::string& pool, bool force) {
      return setActive(service, pool, force);
    };
    admin_ = std::make_unique<admin::AdminServer>(*ctx_, std::move(handlers));
    int rc = admin_->listen(*snapshot_->admin.address);
    if (rc != 0) {
      log::error("cannot listen on admin address", {log::str("address", snapshot_->admin.listen),
                                                    log::str("error", uv_strerror(rc))});
      ok = false;
    } else {
      log::info("admin listening", {log::str("address", admin_->boundAddress().toString())});
    }
  }

  uv_signal_init(&loop_, &sigterm_);
  uv_signal_init(&loop_, &sigint_);
  uv_signal_init(&loop_, &sighup_);
  sigterm_.data = sigint_.data = sighup_.data = this;
  uv_signal_start(&sigterm_, &Control::onSignal, SIGTERM);
  uv_signal_start(&sigint_, &Control::onSignal, SIGINT);
  uv_signal_start(&sighup_, &Control::onSignal, SIGHUP);
  uv_signal_init(&loop_, &sigusr1_);
  sigusr1_.data = this;
  uv_signal_start(&sigusr1_, &Control::onSignal, SIGUSR1);

  if (ok) {
    for (size_t i = 0; i < snapshot_->listeners.size(); ++i) {
      log::info("listening", {log::str("listener", snapshot_->listeners[i].name),
                              log::str("address", bind_addresses_[i].toString()),
                              log::num("workers", snapshot_->workers)});
    }
    watchConfigFiles();
    watchTlsFiles();
    log::info("ready",
              {log::str("config", snapshot_->source), log::num("workers", snapshot_->workers)});
  } else {
    exit_code = 1;
    beginShutdown("startup failed", false);
  }
  if (workers_.empty()) {
    // Nothing will report an exit: close the control handles now.
    shutting_down_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&worker_exit_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&worker_applied_), nullptr);
    closeHandle(&sigterm_);
    closeHandle(&sigint_);
    closeHandle(&sighup_);
    closeHandle(&sigusr1_);
    if (admin_) admin_->close();
  }

  uv_run(&loop_, UV_RUN_DEFAULT);
  stopHealth();
  ctx_->close();
  uv_run(&loop_, UV_RUN_DEFAULT);
  health_.reset();
  dns_.reset();
  for (auto& w : workers_) w->join();
  workers_.clear();
  admin_.reset();
  debounce_.reset();
  canary_timer_.reset();
  shutdown_delay_.reset();
  tls_debounce_.reset();
  ctx_.reset();
  uv_loop_close(&loop_);
  log::info("stopped", {log::num("exit_code", exit_code)});
  return exit_code;
}

void Control::beginShutdown(const char* why, bool use_delay) {
  if (draining_.exchange(true)) {
    // Asked again while /ready is already 503 and the delay runs: drain now.
    if (!drain_started_) {
      log::info("shutdown delay cut short", {log::str("reason", why)});
      startDrain();
    }
    return;
  }
  shutdown_reason_ = why;
  uint64_t delay_ms = use_delay ? snapshot_->shutdown_delay_ms : 0;
  if (delay_ms == 0) {
    startDrain();
    return;
  }
  // Kubernetes removes the pod from its endpoints only after the readiness probe fails
  // (or the endpoint update reaches every node): keep serving meanwhile.
  log::info(
      "shutting down: not ready, still serving",
      {log::str("reason", why), log::num("shutdown_delay_ms", static_cast<long long>(delay_ms))});
  ctx_->timers().arm(*shutdown_delay_, delay_ms);
}

void Control::onShutdownDelay(void* self) { static_cast<Control*>(self)->startDrain(); }

void Control::startDrain() {
  if (drain_started_) return;
  drain_started_ = true;
  ctx_->timers().disarm(*shutdown_delay_);
  log::info("draining", {log::str("reason", shutdown_reason_),
                         log::num("drain_timeout_ms",
                                  static_cast<long long>(snapshot_->limits.drain_timeout_ms))});
  stopHealth();
  for (auto& w : workers_) w->requestDrain();
}

void Control::onSignal(uv_signal_t* handle, int signum) {
  auto* self = static_cast<Control*>(handle->data);
  if (signum == SIGHUP) {
    self->reload("SIGHUP");
    return;
  }
  if (signum == SIGUSR1) {
    if (self->draining_.load()) return;
    for (auto& w : self->workers_) w->requestReopenLogs();
    log::info("reopening access logs", {log::str("trigger", "SIGUSR1")});
    return;
  }
  self->beginShutdown(signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

void Control::onWorkerApplied(uv_async_t* handle) {
  auto* self = static_cast<Control*>(handle->data);
  // Every worker serves the new snapshot: say so once per version (tests and operators
  // can wait for this line rather than guess).
  if (self->applied_count_.load() >= self->applied_expected_ &&
      self->applied_logged_version_ != self->config_version_) {
    self->applied_logged_version_ = self->config_version_;
    log::info("config applied",
              {log::num("version", static_cast<long long>(self->config_version_)),
               log::num("workers", static_cast<long long>(self->workers_.size()))});
  }
}

void Control::onWorkerExit(uv_async_t* handle) {
  auto* self = static_cast<Control*>(handle->data);
  if (self->shutting_down_) return;
  if (self->workers_exited_.load() < self->workers_.size()) {
    // A worker ended on its own (startup failure): bring the rest down too.
    self->beginShutdown("worker exited", false);
    return;
  }
  self->shutting_down_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&self->worker_exit_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&self->worker_applied_), nullptr);
  closeHandle(&self->sigterm_);
  closeHandle(&self->sigint_);
  closeHandle(&self->sighup_);
  closeHandle(&self->sigusr1_);
  if (self->admin_) self->admin_->close();
  self->stopWatching();
  self->closeTlsWatchers();
}

}  // namespace gw::loop
