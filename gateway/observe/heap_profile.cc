#include "gateway/observe/heap_profile.h"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>

#if defined(GW_WITH_JEMALLOC)
#include <jemalloc/jemalloc.h>
#endif

namespace gw::observe {
namespace {

#if defined(GW_WITH_JEMALLOC)
// Statistics are cached by jemalloc; bumping "epoch" refreshes them.
void refreshStats() {
  uint64_t epoch = 1;
  size_t size = sizeof epoch;
  mallctl("epoch", &epoch, &size, &epoch, size);
}

bool readSize(const char* name, size_t& value) {
  size_t size = sizeof value;
  return mallctl(name, &value, &size, nullptr, 0) == 0;
}

bool readBool(const char* name, bool& value) {
  size_t size = sizeof value;
  return mallctl(name, &value, &size, nullptr, 0) == 0;
}

std::string dumpDirectory(const std::string& dir) {
  if (!dir.empty()) return dir;
  for (const char* name : {"GATEWAY_HEAP_DIR", "TMPDIR"}) {
    const char* value = std::getenv(name);
    if (value != nullptr && value[0] != '\0') return value;
  }
  return "/tmp";
}
#endif

}  // namespace

bool jemallocLinked() {
#if defined(GW_WITH_JEMALLOC)
  return true;
#else
  return false;
#endif
}

void appendJemallocStats(std::string& json) {
#if defined(GW_WITH_JEMALLOC)
  refreshStats();
  json += ",\"jemalloc\":{";
  bool first = true;
  for (const char* name : {"stats.allocated", "stats.active", "stats.resident", "stats.mapped",
                           "stats.retained", "stats.metadata"}) {
    size_t value = 0;
    if (!readSize(name, value)) continue;
    if (!first) json += ',';
    first = false;
    json += '"';
    json += name + 6;  // without "stats."
    json += "_bytes\":" + std::to_string(value);
  }
  bool prof = false;
  if (!readBool("opt.prof", prof)) prof = false;
  json += first ? "" : ",";
  json += "\"profiling\":";
  json += prof ? "true" : "false";
  json += '}';
#else
  json += ",\"jemalloc\":null";
#endif
}

HeapDumpResult dumpHeapProfile(const std::string& dir) {
  HeapDumpResult r;
#if defined(GW_WITH_JEMALLOC)
  bool prof = false;
  if (!readBool("opt.prof", prof) || !prof) {
    r.status = 501;
    r.error =
        "heap profiling is not enabled: start the gateway with MALLOC_CONF=prof:true "
        "(and a jemalloc built with profiling)";
    return r;
  }
  static unsigned sequence = 0;
  r.path = dumpDirectory(dir) + "/gateway-heap-" + std::to_string(::getpid()) + "-" +
           std::to_string(++sequence) + ".heap";
  const char* path = r.path.c_str();
  int err = mallctl("prof.dump", nullptr, nullptr, &path, sizeof path);
  if (err != 0) {
    r.status = 500;
    r.error = "prof.dump to " + r.path + " failed (error " + std::to_string(err) + ")";
    r.path.clear();
    return r;
  }
  r.status = 200;
#else
  (void)dir;
  r.status = 501;
  r.error =
      "heap profiling needs jemalloc: build with bazel build --config=jemalloc //gateway "
      "and run with MALLOC_CONF=prof:true";
#endif
  return r;
}

}  // namespace gw::observe
