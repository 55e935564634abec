#include <cstdio>
#include <ctime>

#include "gateway/config/loader.h"
#include "gateway/core/log.h"
#include "gateway/loop/control.h"

namespace gw::loop {

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
  applyHealth(*next);
  snapshot_ = std::move(next);
  bind_addresses_ = std::move(addresses);
  config_version_++;
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

}  // namespace gw::loop
