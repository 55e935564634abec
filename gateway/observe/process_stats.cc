#include "gateway/observe/process_stats.h"

#include <dirent.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>

namespace gw::observe {
namespace {

std::atomic<int64_t> start_mono_ns{0};
std::atomic<int64_t> start_real_ns{0};

int64_t nowNs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

void markProcessStart() {
  int64_t expected = 0;
  if (start_mono_ns.compare_exchange_strong(expected, nowNs(CLOCK_MONOTONIC))) {
    start_real_ns.store(nowNs(CLOCK_REALTIME));
  }
}

double processUptimeSeconds() {
  markProcessStart();
  return static_cast<double>(nowNs(CLOCK_MONOTONIC) - start_mono_ns.load()) / 1e9;
}

double processStartTimeSeconds() {
  markProcessStart();
  return static_cast<double>(start_real_ns.load()) / 1e9;
}

ProcessStats readProcessStats() {
  ProcessStats out;
  long page = sysconf(_SC_PAGESIZE);
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    unsigned long size = 0, resident = 0;
    if (std::fscanf(f, "%lu %lu", &size, &resident) == 2) {
      out.virtual_bytes = static_cast<uint64_t>(size) * static_cast<uint64_t>(page);
      out.resident_bytes = static_cast<uint64_t>(resident) * static_cast<uint64_t>(page);
    }
    std::fclose(f);
  }
  if (std::FILE* f = std::fopen("/proc/self/stat", "r")) {
    char buffer[1024];
    size_t n = std::fread(buffer, 1, sizeof buffer - 1, f);
    std::fclose(f);
    buffer[n] = '\0';
    // The command name (field 2) may hold spaces and parentheses: fields start after
    // the last ')'. utime and stime are fields 14 and 15, num_threads is field 20.
    if (const char* p = std::strrchr(buffer, ')')) {
      unsigned long long utime = 0, stime = 0;
      long threads = 0;
      if (std::sscanf(p + 2,
                      "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %ld",
                      &utime, &stime, &threads) == 3) {
        long ticks = sysconf(_SC_CLK_TCK);
        if (ticks > 0) out.cpu_seconds = static_cast<double>(utime + stime) / ticks;
        out.threads = threads > 0 ? static_cast<uint64_t>(threads) : 0;
      }
    }
  }
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] != '.') ++out.open_fds;
    }
    closedir(dir);
    if (out.open_fds > 0) --out.open_fds;  // the directory's own descriptor
  }
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    out.max_fds = limit.rlim_cur;
  }
  return out;
}

}  // namespace gw::observe
