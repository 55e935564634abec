#pragma once
// TLS counters of one worker. One writer (the worker's loop), read by the control thread
// for /stats: relaxed load + store, no read-modify-write (gw::Counter, gateway/core/counter.h).

#include <cstdint>

#include "gateway/core/counter.h"

namespace gw::tls {

struct TlsCounters {
  Counter handshakes;                   // completed downstream handshakes
  Counter resumed;                      // of which resumed a session (ticket)
  Counter handshake_failures;           // protocol errors, garbage bytes, no shared cipher...
  Counter plain_http;                   // plain HTTP sent to a TLS port
  Counter handshake_timeouts;           // handshake not done within handshake_timeout
  Counter client_cert_failures;         // mTLS: missing or unverifiable client certificate
  Counter sni_unknown;                  // SNI named no configured certificate: default served
  Counter upstream_handshake_failures;  // upstream TLS: handshake or verification failed
};

}  // namespace gw::tls
