// The control thread's TLS concerns: the TLS counters in /stats, and watching the
// certificate files so that a changed certificate is reloaded (see watchTlsFiles).
#include <cstdio>
#include <set>

#include "gateway/core/log.h"
#include "gateway/loop/control.h"

namespace gw::loop {
namespace {

std::string readFile(const std::string& path) {
  std::string text;
  if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
    char buf[8192];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    std::fclose(f);
  }
  return text;
}

}  // namespace

void Control::appendTlsStats(std::string& out) const {
  struct Field {
    const char* name;
    Counter tls::TlsCounters::*count;
  };
  static const Field kFields[] = {
      {"tls_handshakes", &tls::TlsCounters::handshakes},
      {"tls_resumed", &tls::TlsCounters::resumed},
      {"tls_handshake_failures", &tls::TlsCounters::handshake_failures},
      {"tls_plain_http", &tls::TlsCounters::plain_http},
      {"tls_handshake_timeouts", &tls::TlsCounters::handshake_timeouts},
      {"tls_client_cert_failures", &tls::TlsCounters::client_cert_failures},
      {"tls_sni_unknown", &tls::TlsCounters::sni_unknown},
      {"tls_upstream_handshake_failures", &tls::TlsCounters::upstream_handshake_failures},
  };
  for (const Field& f : kFields) {
    uint64_t sum = 0;
    for (const auto& w : workers_) sum += (w->stats().tls.*f.count).get();
    out += ",\"";
    out += f.name;
    out += "\":" + std::to_string(sum);
  }
  // Per worker, so a test can see a session resumed on a worker it was not made on.
  for (auto [name, count] : {std::pair{"tls_handshakes_by_worker", &tls::TlsCounters::handshakes},
                             std::pair{"tls_resumed_by_worker", &tls::TlsCounters::resumed}}) {
    out += ",\"";
    out += name;
    out += "\":[";
    for (size_t i = 0; i < workers_.size(); ++i) {
      if (i != 0) out += ",";
      out += std::to_string((workers_[i]->stats().tls.*count).get());
    }
    out += "]";
  }
}

}  // namespace gw::loop

namespace gw::loop {
namespace {

std::vector<std::string> tlsFiles(const config::Snapshot& snapshot) {
  std::vector<std::string> files;
  for (const config::Listener& listener : snapshot.listeners) {
    if (listener.tls == nullptr) continue;
    const tls::ServerSettings& s = listener.tls->settings();
    for (const tls::CertificateFiles& c : s.certificates) {
      files.push_back(c.cert_file);
      files.push_back(c.key_file);
    }
    if (!s.client_ca_file.empty()) files.push_back(s.client_ca_file);
  }
  for (const auto& [name, service] : snapshot.services) {
    for (const auto& [pool_name, pool] : service.pools) {
      if (pool.tls == nullptr) continue;
      const tls::ClientSettings& s = pool.tls->settings();
      for (const std::string* f : {&s.ca_file, &s.cert_file, &s.key_file}) {
        if (!f->empty()) files.push_back(*f);
      }
    }
  }
  return files;
}

std::string directoryOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

void Control::watchTlsFiles() {
  closeTlsWatchers();
  if (shutting_down_ || draining_.load()) return;
  std::vector<std::string> files = tlsFiles(*snapshot_);
  tls_files_text_.clear();
  for (const std::string& f : files) tls_files_text_ += readFile(f) + '\0';
  if (files.empty()) return;
  if (!tls_debounce_) tls_debounce_ = std::make_unique<Timer>(this, &Control::onTlsDebounce);
  // Directories, not files: certbot and Kubernetes replace files by rename or symlink swap.
  std::set<std::string> dirs;
  for (const std::string& f : files) dirs.insert(directoryOf(f));
  for (const std::string& dir : dirs) {
    auto* handle = new uv_fs_event_t;
    uv_fs_event_init(&loop_, handle);
    handle->data = this;
    if (uv_fs_event_start(handle, &Control::onTlsFsEvent, dir.c_str(), 0) == 0) {
      tls_watchers_.push_back(handle);
    } else {
      uv_close(reinterpret_cast<uv_handle_t*>(handle),
               [](uv_handle_t* h) { delete reinterpret_cast<uv_fs_event_t*>(h); });
      log::warn("cannot watch a certificate directory; reload with SIGHUP", {log::str("dir", dir)});
    }
  }
}

void Control::closeTlsWatchers() {
  for (uv_fs_event_t* handle : tls_watchers_) {
    uv_close(reinterpret_cast<uv_handle_t*>(handle),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_fs_event_t*>(h); });
  }
  tls_watchers_.clear();
  if (tls_debounce_) ctx_->timers().disarm(*tls_debounce_);
}

void Control::onTlsFsEvent(uv_fs_event_t* handle, const char*, int, int status) {
  auto* self = static_cast<Control*>(handle->data);
  if (status < 0 || self->draining_.load()) return;
  // A certificate and its key are usually replaced one after the other: wait a moment.
  self->ctx_->timers().arm(*self->tls_debounce_, 300);
}

void Control::onTlsDebounce(void* p) {
  auto* self = static_cast<Control*>(p);
  if (self->draining_.load()) return;
  std::string text;
  for (const std::string& f : tlsFiles(*self->snapshot_)) text += readFile(f) + '\0';
  if (text == self->tls_files_text_) return;  // unrelated file, or nothing new
  self->tls_files_text_ = std::move(text);    // a bad version is tried once, not in a loop
  self->reload("certificate change");
}

}  // namespace gw::loop
