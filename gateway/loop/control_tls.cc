// The control thread's TLS concerns: the TLS counters in /stats, and watching the
// certificate files so that a changed certificate is reloaded (see watchTlsFiles).
#include "gateway/loop/control.h"

namespace gw::loop {

void Control::appendTlsStats(std::string& out) const {
  struct Field {
    const char* name;
    tls::TlsCount tls::TlsCounters::*count;
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
