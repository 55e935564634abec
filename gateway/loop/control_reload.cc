#include <chrono>
#include <cstdio>
#include <ctime>
#include <thread>

#include "gateway/config/loader.h"
#include "gateway/core/log.h"
#include "gateway/loop/control.h"

namespace gw::loop {

std::string Control::reload(const char* trigger) {
  if (draining_.load()) return "{\"ok\":false,\"error\":\"draining\"}\n";
  if (snapshot_->source == "<flags>") {
    log::warn("reload: quick mode has no config file to reload", {log::str("trigger", trigger)});
    return "{\"ok\":false,\"error\":\"quick mode has no config file\"}\n";
  }
  std::string fingerprint = config::readConfigFingerprint(snapshot_->source);
  attempted_fingerprint_ = fingerprint;
  {
    time_t now = time(nullptr);
    tm utc;
    gmtime_r(&now, &utc);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &utc);
    last_reload_time_ = when;
  }
  config::LoadResult loaded = config::loadConfigFile(snapshot_->source, env_overrides_);
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
    config_fingerprint_ = std::move(fingerprint);
    watchConfigFiles();
    reloads_ok_++;
    last_reload_ok_ = true;
    watchTlsFiles();  // the certificate files may have moved
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
  return "{\"ok\":true,\"version\":" + std::to_string(config_version_) +
         ",\"applied_us\":" + std::to_string(last_publish_us_) +
         ",\"all_workers\":" + (last_publish_complete_ ? "true" : "false") + "}\n";
}

void Control::publish(std::shared_ptr<const config::Snapshot> next,
                      std::vector<net::SocketAddress> addresses) {
  uint64_t start = uv_hrtime();
  next = withCanaries(std::move(next));
  applied_expected_ += workers_.size();
  for (auto& w : workers_) w->requestApply(next, addresses);
  applyHealth(*next);
  snapshot_ = std::move(next);
  bind_addresses_ = std::move(addresses);
  config_version_++;
  // Wait (briefly: a worker applies between two callbacks) until every worker serves
  // the new snapshot, so that when a flip or reload call returns, every new request on
  // every worker sees it. Bounded, in case a worker is stuck or draining.
  uint64_t deadline = start + 5'000'000'000ull;
  while (applied_count_.load() < applied_expected_ && uv_hrtime() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  last_publish_us_ = (uv_hrtime() - start) / 1000;
  last_publish_complete_ = applied_count_.load() >= applied_expected_;
}

void Control::watchConfigFiles() {
  if (snapshot_->source == "<flags>") return;
  // Watch directories, not files: editors replace a file by renaming a temp file over
  // it, and Kubernetes swaps a `..data` symlink; both leave a watch on the old inode
  // blind. Events are debounced and a reload happens only if some file's bytes changed.
  std::map<std::string, uv_fs_event_t*> keep;
  for (const std::string& dir : snapshot_->watch_dirs) {
    auto it = watchers_.find(dir);
    if (it != watchers_.end()) {
      keep.insert(*it);
      watchers_.erase(it);
      continue;
    }
    auto* watcher = new uv_fs_event_t;
    uv_fs_event_init(&loop_, watcher);
    watcher->data = this;
    if (uv_fs_event_start(watcher, &Control::onFsEvent, dir.c_str(), 0) == 0) {
      keep[dir] = watcher;
    } else {
      uv_close(reinterpret_cast<uv_handle_t*>(watcher),
               [](uv_handle_t* h) { delete reinterpret_cast<uv_fs_event_t*>(h); });
      log::warn("cannot watch a config directory; reload with SIGHUP", {log::str("dir", dir)});
    }
  }
  stopWatching();  // the directories no file of the config is in any more
  watchers_ = std::move(keep);
}

void Control::stopWatching() {
  for (auto& [dir, watcher] : watchers_) {
    uv_close(reinterpret_cast<uv_handle_t*>(watcher),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_fs_event_t*>(h); });
  }
  watchers_.clear();
}

void Control::onFsEvent(uv_fs_event_t* handle, const char*, int, int status) {
  auto* self = static_cast<Control*>(handle->data);
  if (status < 0 || self->draining_.load()) return;
  self->ctx_->timers().arm(*self->debounce_, 200);
}

void Control::onReloadDebounce(void* p) {
  auto* self = static_cast<Control*>(p);
  if (self->draining_.load()) return;
  std::string fingerprint = config::readConfigFingerprint(self->snapshot_->source);
  // Unrelated file in the directory, no change, or the same bad files again.
  if (fingerprint.empty() || fingerprint == self->config_fingerprint_ ||
      fingerprint == self->attempted_fingerprint_) {
    return;
  }
  self->reload("file change");
}

}  // namespace gw::loop
