#pragma once
// Figures of this process read from /proc on demand (a /metrics scrape, /debug/memory):
// never on the request path.

#include <cstdint>

namespace gw::observe {

struct ProcessStats {
  uint64_t resident_bytes = 0;  // VmRSS
  uint64_t virtual_bytes = 0;   // VmSize
  uint64_t open_fds = 0;        // entries of /proc/self/fd
  uint64_t max_fds = 0;         // RLIMIT_NOFILE soft limit
  double cpu_seconds = 0;       // user + system
  uint64_t threads = 0;
};

ProcessStats readProcessStats();

// Seconds since this process started (measured from the first call, made at startup by
// main via markProcessStart()).
void markProcessStart();
double processUptimeSeconds();
// Unix time of the start, in seconds.
double processStartTimeSeconds();

}  // namespace gw::observe
