#pragma once
// trace: W3C Trace Context (https://www.w3.org/TR/trace-context/) for the upstream hop.
//
//   { type = "trace", sample_rate = 0.1 }
//
// A valid incoming `traceparent` keeps its trace id and flags, and its parent id is
// replaced by a new span id: the gateway's hop is a child span of the caller's. A
// missing or invalid one (or more than one) starts a new trace whose sampled flag is set
// for `sample_rate` of them (0.0-1.0, default 1.0); the incoming `tracestate` then
// belongs to another trace and is dropped. A valid trace's `tracestate` passes unchanged.
// The outgoing traceparent is what a log line should take the trace id from.

#include <cstdint>
#include <string_view>
#include <vector>

#include "gateway/filter/registry.h"

namespace gw::filters::trace {

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table);
std::vector<std::string_view> keys();

// "00-" 32 hex "-" 16 hex "-" 2 hex: 55 characters.
constexpr size_t kTraceParentLength = 55;

struct TraceParent {
  char trace_id[32];   // lowercase hex, not all zero
  char parent_id[16];  // lowercase hex, not all zero
  uint8_t flags = 0;   // bit 0: sampled
};

// Parses a traceparent value. Version 00 must be exactly 55 characters; a later version
// (not ff) is read by its version-00 prefix when the rest starts with '-', as the spec
// asks. Hex must be lowercase; all-zero ids are invalid.
bool parseTraceParent(std::string_view text, TraceParent& out);
// Writes the version-00 form into `out` (kTraceParentLength bytes).
void formatTraceParent(const TraceParent& trace, char out[kTraceParentLength]);
// `count` random lowercase hex digits, not all zero, from a per-thread generator.
void randomHex(char* out, size_t count);

}  // namespace gw::filters::trace
