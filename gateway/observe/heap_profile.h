#pragma once
// Optional heap profiling with jemalloc. Built in with `bazel build --config=jemalloc`
// (which links jemalloc into the gateway); otherwise every call reports that it is not.
//
// Control thread only (admin endpoints); nothing here runs on a worker loop.

#include <string>

namespace gw::observe {

// True when the binary was built with --config=jemalloc.
bool jemallocLinked();

// `,"jemalloc":{...}` (stats.allocated, stats.active, stats.resident, stats.mapped,
// stats.retained, stats.metadata, opt.prof) appended to a JSON object being written,
// or `,"jemalloc":null` without jemalloc.
void appendJemallocStats(std::string& json);

struct HeapDumpResult {
  int status = 0;     // 200, or 501 (not available) / 500 (the dump failed)
  std::string path;   // the profile written (200)
  std::string error;  // why not (otherwise)
};

// Writes a heap profile (mallctl "prof.dump") into `dir` (empty: $GATEWAY_HEAP_DIR, else
// $TMPDIR, else /tmp) as gateway-heap-PID-N.heap. Needs jemalloc and MALLOC_CONF=prof:true.
HeapDumpResult dumpHeapProfile(const std::string& dir = "");

}  // namespace gw::observe
