#pragma once
// TLS counters of one worker. One writer (the worker's loop), read by the control thread
// for /stats: relaxed load + store, no read-modify-write (same scheme as proxy::Counter).

#include <atomic>
#include <cstdint>

namespace gw::tls {

class TlsCount {
 public:
  void add() {
    value_.store(value_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  uint64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

struct TlsCounters {
  TlsCount handshakes;                   // completed downstream handshakes
  TlsCount resumed;                      // of which resumed a session (ticket)
  TlsCount handshake_failures;           // protocol errors, garbage bytes, no shared cipher...
  TlsCount plain_http;                   // plain HTTP sent to a TLS port
  TlsCount handshake_timeouts;           // handshake not done within handshake_timeout
  TlsCount client_cert_failures;         // mTLS: missing or unverifiable client certificate
  TlsCount sni_unknown;                  // SNI named no configured certificate: default served
  TlsCount upstream_handshake_failures;  // upstream TLS: handshake or verification failed
};

}  // namespace gw::tls
