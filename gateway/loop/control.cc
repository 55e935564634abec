#include "gateway/loop/control.h"

#include <uv.h>

#include <atomic>
#include <csignal>
#include <string>
#include <vector>

#include "gateway/admin/admin_server.h"
#include "gateway/core/log.h"
#include "gateway/loop/worker.h"
#include "gateway/net/tcp_transport.h"

namespace gw::loop {
namespace {

class Control {
 public:
  explicit Control(std::shared_ptr<const config::Snapshot> snapshot)
      : snapshot_(std::move(snapshot)) {}

  int run();

 private:
  bool resolveListenAddresses(std::vector<uv_tcp_t*>& placeholders);
  void beginShutdown(const char* why);
  std::string statsJson() const;
  static void onSignal(uv_signal_t* handle, int signum);
  static void onWorkerExit(uv_async_t* handle);

  std::shared_ptr<const config::Snapshot> snapshot_;
  uv_loop_t loop_{};
  std::unique_ptr<LoopContext> ctx_;
  std::vector<net::SocketAddress> bind_addresses_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<admin::AdminServer> admin_;
  uv_signal_t sigterm_{}, sigint_{}, sighup_{};
  uv_async_t worker_exit_{};
  std::atomic<unsigned> workers_exited_{0};
  std::atomic<bool> draining_{false};
  bool shutting_down_ = false;
};

void closeHandle(void* handle) {
  uv_close(static_cast<uv_handle_t*>(handle), nullptr);
}

bool Control::resolveListenAddresses(std::vector<uv_tcp_t*>& placeholders) {
  // Port 0 means "any free port", but every worker must bind the same one: bind one
  // SO_REUSEPORT placeholder here (not listening, so it takes no connections) to learn
  // the port, and keep it until the workers have bound theirs.
  for (const config::Listener& l : snapshot_->listeners) {
    net::SocketAddress address = l.address;
    if (address.port() == 0) {
      auto* tcp = new uv_tcp_t;
      uv_tcp_init(&loop_, tcp);
      placeholders.push_back(tcp);
      int rc = net::bindReusePort(tcp, address);
      if (rc != 0) {
        log::error("cannot bind listener", {log::str("listener", l.name),
                                            log::str("address", l.listen),
                                            log::str("error", uv_strerror(rc))});
        return false;
      }
      address = net::boundAddress(tcp);
    }
    bind_addresses_.push_back(address);
  }
  return true;
}

int Control::run() {
  uv_loop_init(&loop_);
  ctx_ = std::make_unique<LoopContext>(&loop_);
  int exit_code = 0;

  std::vector<uv_tcp_t*> placeholders;
  bool ok = resolveListenAddresses(placeholders);

  uv_async_init(&loop_, &worker_exit_, &Control::onWorkerExit);
  worker_exit_.data = this;

  if (ok) {
    for (unsigned i = 0; i < snapshot_->workers; ++i) {
      workers_.push_back(std::make_unique<Worker>(i, snapshot_, bind_addresses_, [this] {
        workers_exited_.fetch_add(1);
        uv_async_send(&worker_exit_);
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

  if (ok && snapshot_->admin.address) {
    admin::AdminHandlers handlers;
    handlers.ready = [this] { return !draining_.load(); };
    handlers.stats_json = [this] { return statsJson(); };
    admin_ = std::make_unique<admin::AdminServer>(*ctx_, std::move(handlers));
    int rc = admin_->listen(*snapshot_->admin.address);
    if (rc != 0) {
      log::error("cannot listen on admin address",
                 {log::str("address", snapshot_->admin.listen), log::str("error", uv_strerror(rc))});
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

  if (ok) {
    for (size_t i = 0; i < snapshot_->listeners.size(); ++i) {
      log::info("listening", {log::str("listener", snapshot_->listeners[i].name),
                              log::str("address", bind_addresses_[i].toString()),
                              log::num("workers", snapshot_->workers)});
    }
    log::info("ready", {log::str("config", snapshot_->source),
                        log::num("workers", snapshot_->workers)});
  } else {
    exit_code = 1;
    beginShutdown("startup failed");
  }
  if (workers_.empty()) {
    // Nothing will report an exit: close the control handles now.
    shutting_down_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&worker_exit_), nullptr);
    closeHandle(&sigterm_);
    closeHandle(&sigint_);
    closeHandle(&sighup_);
    if (admin_) admin_->close();
  }

  uv_run(&loop_, UV_RUN_DEFAULT);
  ctx_->close();
  uv_run(&loop_, UV_RUN_DEFAULT);
  for (auto& w : workers_) w->join();
  workers_.clear();
  admin_.reset();
  ctx_.reset();
  uv_loop_close(&loop_);
  log::info("stopped", {log::num("exit_code", exit_code)});
  return exit_code;
}

void Control::beginShutdown(const char* why) {
  if (draining_.exchange(true)) return;
  log::info("draining", {log::str("reason", why),
                         log::num("drain_timeout_ms",
                                  static_cast<long long>(snapshot_->limits.drain_timeout_ms))});
  for (auto& w : workers_) w->requestDrain();
}

void Control::onSignal(uv_signal_t* handle, int signum) {
  auto* self = static_cast<Control*>(handle->data);
  if (signum == SIGHUP) {
    log::warn("SIGHUP: config reload is not implemented yet; ignoring");
    return;
  }
  self->beginShutdown(signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

void Control::onWorkerExit(uv_async_t* handle) {
  auto* self = static_cast<Control*>(handle->data);
  if (self->shutting_down_) return;
  if (self->workers_exited_.load() < self->workers_.size()) {
    // A worker ended on its own (startup failure): bring the rest down too.
    self->beginShutdown("worker exited");
    return;
  }
  self->shutting_down_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&self->worker_exit_), nullptr);
  closeHandle(&self->sigterm_);
  closeHandle(&self->sigint_);
  closeHandle(&self->sighup_);
  if (self->admin_) self->admin_->close();
}

std::string Control::statsJson() const {
  struct Field {
    const char* name;
    proxy::Counter proxy::WorkerStats::*counter;
  };
  static const Field kFields[] = {
      {"connections_accepted", &proxy::WorkerStats::connections_accepted},
      {"connections_active", &proxy::WorkerStats::connections_active},
      {"connections_refused", &proxy::WorkerStats::connections_refused},
      {"requests", &proxy::WorkerStats::requests},
      {"responses_1xx", &proxy::WorkerStats::responses_1xx},
      {"responses_2xx", &proxy::WorkerStats::responses_2xx},
      {"responses_3xx", &proxy::WorkerStats::responses_3xx},
      {"responses_4xx", &proxy::WorkerStats::responses_4xx},
      {"responses_5xx", &proxy::WorkerStats::responses_5xx},
      {"local_replies", &proxy::WorkerStats::local_replies},
      {"bad_requests", &proxy::WorkerStats::bad_requests},
      {"upstream_connect_failures", &proxy::WorkerStats::upstream_connect_failures},
      {"upstream_timeouts", &proxy::WorkerStats::upstream_timeouts},
      {"upstream_retries", &proxy::WorkerStats::upstream_retries},
      {"upstream_resets", &proxy::WorkerStats::upstream_resets},
      {"header_timeouts", &proxy::WorkerStats::header_timeouts},
  };
  std::string out = "{";
  bool first = true;
  for (const Field& f : kFields) {
    uint64_t sum = 0;
    for (const auto& w : workers_) {
      sum += (w->stats().*f.counter).get();
    }
    if (!first) out += ",";
    first = false;
    out += "\"";
    out += f.name;
    out += "\":" + std::to_string(sum);
  }
  out += ",\"workers\":" + std::to_string(workers_.size()) + "}\n";
  return out;
}

}  // namespace

int runGateway(std::shared_ptr<const config::Snapshot> snapshot) {
  Control control(std::move(snapshot));
  return control.run();
}

}  // namespace gw::loop
