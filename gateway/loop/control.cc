#include "gateway/loop/control.h"

#include <uv.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "gateway/admin/admin_server.h"
#include "gateway/config/active_overrides.h"
#include "gateway/config/loader.h"
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
  bool resolveListenAddresses(const config::Snapshot& snapshot,
                              std::vector<net::SocketAddress>& out,
                              std::vector<uv_tcp_t*>& placeholders);
  // Loads the config file again and publishes it to every worker; on any error the
  // running config stays. Returns a JSON summary (for the admin API).
  std::string reload(const char* trigger);
  // Blue/green flip through the admin API (pool "" = the other of exactly two pools).
  admin::AdminReply setActive(const std::string& service, const std::string& pool);
  admin::AdminReply servicesJson() const;
  // Sends `next` to every worker (bind addresses as resolved) and makes it current.
  void publish(std::shared_ptr<const config::Snapshot> next,
               std::vector<net::SocketAddress> addresses);
  void loadOverrides();
  // file_snapshot_ with the admin-API flips that still hold (logs and saves any dropped).
  std::shared_ptr<const config::Snapshot> withOverrides();
  void saveOverrides();
  void watchConfigFile();
  static void onFsEvent(uv_fs_event_t* handle, const char* filename, int events, int status);
  static void onReloadDebounce(void* self);
  static std::string readFile(const std::string& path);
  void beginShutdown(const char* why);
  std::string statsJson() const;
  static void onSignal(uv_signal_t* handle, int signum);
  static void onWorkerExit(uv_async_t* handle);
  static void onWorkerApplied(uv_async_t* handle);

  std::shared_ptr<const config::Snapshot> snapshot_;       // what the workers serve
  std::shared_ptr<const config::Snapshot> file_snapshot_;  // as the file says (no flips)
  config::ActiveOverrides overrides_;
  std::string state_path_;
  uv_loop_t loop_{};
  std::unique_ptr<LoopContext> ctx_;
  std::vector<net::SocketAddress> bind_addresses_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<admin::AdminServer> admin_;
  uv_signal_t sigterm_{}, sigint_{}, sighup_{};
  uv_async_t worker_exit_{};
  uv_async_t worker_applied_{};
  std::atomic<uint64_t> applied_count_{0};  // acknowledgements from workers, all reloads
  uint64_t applied_expected_ = 0;
  uint64_t applied_logged_version_ = 1;
  uv_fs_event_t watcher_{};
  bool watching_ = false;
  std::unique_ptr<Timer> debounce_;
  std::string config_text_;     // the text of the running config (to skip no-op events)
  std::string attempted_text_;  // the text of the last reload attempt
  uint64_t config_version_ = 1;
  uint64_t reloads_ok_ = 0;
  uint64_t reloads_failed_ = 0;
  std::string last_reload_error_;
  std::string last_reload_time_;
  bool last_reload_ok_ = true;  // when the last reload was attempted (UTC, ISO 8601)
  std::atomic<unsigned> workers_exited_{0};
  std::atomic<bool> draining_{false};
  bool shutting_down_ = false;
};

void closeHandle(void* handle) { uv_close(static_cast<uv_handle_t*>(handle), nullptr); }

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

std::string Control::readFile(const std::string& path) {
  std::string text;
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    char buf[8192];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    std::fclose(f);
  }
  return text;
}

std::string Control::reload(const char* trigger) {
  if (draining_.load()) return "{\"ok\":false,\"error\":\"draining\"}\n";
  if (snapshot_->source == "<flags>") {
    log::warn("reload: quick mode has no config file to reload", {log::str("trigger", trigger)});
    return "{\"ok\":false,\"error\":\"quick mode has no config file\"}\n";
  }
  std::string text = readFile(snapshot_->source);
  attempted_text_ = text;
  {
    time_t now = time(nullptr);
    tm utc;
    gmtime_r(&now, &utc);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &utc);
    last_reload_time_ = when;
  }
  config::LoadResult loaded = config::loadConfigFile(snapshot_->source);
  if (!loaded.ok()) {
    reloads_failed_++;
    last_reload_ok_ = false;
    last_reload_error_.clear();
    for (const auto& e : loaded.errors) {
      log::error("config reload failed; the running config stays",
                 {log::str("trigger", trigger), log::str("error", e.toString())});
      if (!last_reload_error_.empty()) last_reload_error_ += "; ";
      last_reload_error_ += e.toString();
    }
    std::string out = "{\"ok\":false,\"errors\":[";
    for (size_t i = 0; i < loaded.errors.size(); ++i) {
      if (i != 0) out += ",";
      out += "\"";
      log::appendJsonEscaped(out, loaded.errors[i].toString());
      out += "\"";
    }
    return out + "]}\n";
  }
  if (loaded.snapshot->workers != snapshot_->workers) {
    log::warn("reload: a new worker count applies on restart",
              {log::num("running", snapshot_->workers),
               log::num("configured", loaded.snapshot->workers)});
  }
  std::vector<net::SocketAddress> addresses;
  std::vector<uv_tcp_t*> placeholders;
  bool ok = resolveListenAddresses(*loaded.snapshot, addresses, placeholders);
  if (ok) {
    file_snapshot_ = loaded.snapshot;
    publish(withOverrides(), std::move(addresses));
    config_text_ = std::move(text);
    reloads_ok_++;
    last_reload_ok_ = true;
  } else {
    reloads_failed_++;
  }
  // The placeholders may close now: workers bind in their own loops, and a listener on
  // a fresh port 0 keeps its port as long as one socket holds it; a worker that has not
  // bound yet binds the same address again with SO_REUSEPORT.
  for (uv_tcp_t* tcp : placeholders) {
    uv_close(reinterpret_cast<uv_handle_t*>(tcp),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  }
  if (!ok) return "{\"ok\":false,\"error\":\"cannot bind a listener\"}\n";
  log::info("config reloaded", {log::str("trigger", trigger), log::str("config", snapshot_->source),
                                log::num("version", static_cast<long long>(config_version_))});
  for (size_t i = 0; i < snapshot_->listeners.size(); ++i) {
    log::info("listening", {log::str("listener", snapshot_->listeners[i].name),
                            log::str("address", bind_addresses_[i].toString()),
                            log::num("workers", snapshot_->workers)});
  }
  return "{\"ok\":true,\"version\":" + std::to_string(config_version_) + "}\n";
}

void Control::publish(std::shared_ptr<const config::Snapshot> next,
                      std::vector<net::SocketAddress> addresses) {
  applied_expected_ += workers_.size();
  for (auto& w : workers_) w->requestApply(next, addresses);
  snapshot_ = std::move(next);
  bind_addresses_ = std::move(addresses);
  config_version_++;
}

void Control::loadOverrides() {
  file_snapshot_ = snapshot_;
  state_path_ = config::ActiveOverrides::pathFor(snapshot_->source);
  std::string error = overrides_.load(state_path_);
  if (!error.empty()) {
    log::warn("ignoring the flip state file", {log::str("error", error)});
    return;
  }
  snapshot_ = withOverrides();
  for (const auto& [service, o] : overrides_.all()) {
    log::info("active pool set by an earlier admin API flip",
              {log::str("service", service), log::str("active", o.active),
               log::str("state_file", state_path_)});
  }
}

std::shared_ptr<const config::Snapshot> Control::withOverrides() {
  std::vector<std::string> dropped;
  std::shared_ptr<const config::Snapshot> next = overrides_.apply(file_snapshot_, dropped);
  for (const std::string& service : dropped) {
    log::info("the config file changed the active pool; the admin API flip is cleared",
              {log::str("service", service)});
  }
  if (!dropped.empty()) saveOverrides();
  return next;
}

void Control::saveOverrides() {
  std::string error = overrides_.save(state_path_);
  if (!error.empty()) log::error("cannot write the flip state file", {log::str("error", error)});
}

admin::AdminReply Control::setActive(const std::string& service, const std::string& pool_in) {
  auto json_error = [](int status, const std::string& message) {
    std::string out = "{\"ok\":false,\"error\":\"";
    log::appendJsonEscaped(out, message);
    return admin::AdminReply{status, out + "\"}\n"};
  };
  if (draining_.load()) return json_error(503, "draining");
  const config::Service* current = snapshot_->findService(service);
  if (current == nullptr) return json_error(404, "no service \"" + service + "\"");
  std::string pool = pool_in;
  if (pool.empty()) {
    if (current->pools.size() != 2) {
      return json_error(409, "flip needs exactly two pools; use PUT /services/" + service +
                                 "/active with a pool name");
    }
    for (const auto& [name, p] : current->pools) {
      if (name != current->active) pool = name;
    }
  }
  if (current->pools.count(pool) == 0) {
    std::string names;
    for (const auto& [name, p] : current->pools) names += (names.empty() ? "" : ", ") + name;
    return json_error(
        404, "service \"" + service + "\" has no pool \"" + pool + "\" (pools: " + names + ")");
  }
  std::string previous = current->active;
  if (pool != previous) {
    auto next = std::make_shared<config::Snapshot>(*snapshot_);
    next->services[service].active = pool;
    const config::Service* in_file = file_snapshot_->findService(service);
    overrides_.set(service, pool, in_file != nullptr ? in_file->active : previous);
    saveOverrides();
    publish(next, bind_addresses_);
    log::info("active pool changed",
              {log::str("service", service), log::str("from", previous), log::str("to", pool),
               log::str("trigger", "admin API"),
               log::num("version", static_cast<long long>(config_version_))});
  }
  return admin::AdminReply{200, "{\"ok\":true,\"service\":\"" + service + "\",\"previous\":\"" +
                                    previous + "\",\"active\":\"" + pool +
                                    "\",\"version\":" + std::to_string(config_version_) + "}\n"};
}

admin::AdminReply Control::servicesJson() const {
  std::string out = "{\"version\":" + std::to_string(config_version_) + ",\"services\":{";
  bool first_service = true;
  for (const auto& [name, service] : snapshot_->services) {
    out += first_service ? "\"" : ",\"";
    first_service = false;
    log::appendJsonEscaped(out, name);
    out += "\":{\"active\":\"";
    log::appendJsonEscaped(out, service.active);
    out += "\",\"flipped_by_api\":";
    out += overrides_.all().count(name) ? "true" : "false";
    out += ",\"lb\":\"" + service.lb + "\",\"pools\":{";
    bool first_pool = true;
    for (const auto& [pool_name, pool] : service.pools) {
      out += first_pool ? "\"" : ",\"";
      first_pool = false;
      log::appendJsonEscaped(out, pool_name);
      out += "\":[";
      for (size_t i = 0; i < pool.endpoints.size(); ++i) {
        out += i == 0 ? "\"" : ",\"";
        log::appendJsonEscaped(out, pool.endpoints[i].key);
        out += "\"";
      }
      out += "]";
    }
    out += "}}";
  }
  return admin::AdminReply{200, out + "}}\n"};
}

void Control::watchConfigFile() {
  if (snapshot_->source == "<flags>") return;
  // Watch the directory, not the file: editors replace the file by renaming a temp file
  // over it, and Kubernetes swaps a `..data` symlink; both leave a watch on the old
  // inode blind. Events are debounced and a reload happens only if the text changed.
  std::string dir = snapshot_->source;
  size_t slash = dir.rfind('/');
  dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : dir.substr(0, slash));
  uv_fs_event_init(&loop_, &watcher_);
  watcher_.data = this;
  if (uv_fs_event_start(&watcher_, &Control::onFsEvent, dir.c_str(), 0) == 0) {
    watching_ = true;
  } else {
    uv_close(reinterpret_cast<uv_handle_t*>(&watcher_), nullptr);
    log::warn("cannot watch the config directory; reload with SIGHUP", {log::str("dir", dir)});
  }
}

void Control::onFsEvent(uv_fs_event_t* handle, const char*, int, int status) {
  auto* self = static_cast<Control*>(handle->data);
  if (status < 0 || self->draining_.load()) return;
  self->ctx_->timers().arm(*self->debounce_, 200);
}

void Control::onReloadDebounce(void* p) {
  auto* self = static_cast<Control*>(p);
  if (self->draining_.load()) return;
  std::string text = readFile(self->snapshot_->source);
  // Unrelated file in the directory, no change, or the same bad text again.
  if (text.empty() || text == self->config_text_ || text == self->attempted_text_) return;
  self->reload("file change");
}

int Control::run() {
  uv_loop_init(&loop_);
  ctx_ = std::make_unique<LoopContext>(&loop_);
  int exit_code = 0;

  loadOverrides();
  std::vector<uv_tcp_t*> placeholders;
  bool ok = resolveListenAddresses(*snapshot_, bind_addresses_, placeholders);
  config_text_ = readFile(snapshot_->source);
  debounce_ = std::make_unique<Timer>(this, &Control::onReloadDebounce);

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

  if (ok && snapshot_->admin.address) {
    admin::AdminHandlers handlers;
    handlers.ready = [this] { return !draining_.load(); };
    handlers.stats_json = [this] { return statsJson(); };
    handlers.reload = [this] { return reload("admin API"); };
    handlers.services = [this] { return servicesJson(); };
    handlers.set_active = [this](const std::string& service, const std::string& pool) {
      return setActive(service, pool);
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

  if (ok) {
    for (size_t i = 0; i < snapshot_->listeners.size(); ++i) {
      log::info("listening", {log::str("listener", snapshot_->listeners[i].name),
                              log::str("address", bind_addresses_[i].toString()),
                              log::num("workers", snapshot_->workers)});
    }
    watchConfigFile();
    log::info("ready",
              {log::str("config", snapshot_->source), log::num("workers", snapshot_->workers)});
  } else {
    exit_code = 1;
    beginShutdown("startup failed");
  }
  if (workers_.empty()) {
    // Nothing will report an exit: close the control handles now.
    shutting_down_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&worker_exit_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&worker_applied_), nullptr);
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
  debounce_.reset();
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
    self->reload("SIGHUP");
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
    self->beginShutdown("worker exited");
    return;
  }
  self->shutting_down_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&self->worker_exit_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&self->worker_applied_), nullptr);
  closeHandle(&self->sigterm_);
  closeHandle(&self->sigint_);
  closeHandle(&self->sighup_);
  if (self->admin_) self->admin_->close();
  if (self->watching_) {
    self->watching_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&self->watcher_), nullptr);
  }
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
  out += ",\"workers\":" + std::to_string(workers_.size());
  out += ",\"config_version\":" + std::to_string(config_version_);
  out += ",\"config_reloads_ok\":" + std::to_string(reloads_ok_);
  out += ",\"config_reloads_failed\":" + std::to_string(reloads_failed_);
  out += std::string(",\"last_reload_ok\":") + (last_reload_ok_ ? "true" : "false");
  out += ",\"last_reload_error\":\"";
  log::appendJsonEscaped(out, last_reload_error_);
  out += "\",\"last_reload_attempt\":\"" + last_reload_time_ + "\"}\n";
  return out;
}

}  // namespace

int runGateway(std::shared_ptr<const config::Snapshot> snapshot) {
  Control control(std::move(snapshot));
  return control.run();
}

}  // namespace gw::loop
