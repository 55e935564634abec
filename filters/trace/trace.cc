#include "filters/trace/trace.h"

#include <cstring>
#include <random>

#include "gateway/http/parser.h"

namespace gw::filters::trace {
namespace {

constexpr std::string_view kTraceParent = "traceparent";
constexpr std::string_view kTraceState = "tracestate";
constexpr char kHex[] = "0123456789abcdef";

// SplitMix64, one state per worker thread (no lock, no shared state), seeded from the
// system's random device: ids need to be unique and unguessable enough for tracing,
// not secret, and this costs a few instructions where std::mt19937_64 costs hundreds.
uint64_t nextRandom() {
  thread_local uint64_t state = [] {
    std::random_device device;
    return static_cast<uint64_t>(device()) << 32 ^ device();
  }();
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // uppercase is invalid in traceparent
}

// Lowercase hex and not all zero.
bool isId(std::string_view text) {
  bool nonzero = false;
  for (char c : text) {
    if (hexValue(c) < 0) return false;
    nonzero = nonzero || c != '0';
  }
  return nonzero;
}

class Trace final : public filter::Filter {
 public:
  explicit Trace(uint64_t sample_below) : sample_below_(sample_below) {}

  filter::Status onRequestHeaders(filter::Context& ctx) override {
    TraceParent trace;
    std::string_view incoming;
    bool found = ctx.request_headers.find(ctx.request.head, kTraceParent, incoming);
    bool single = ctx.request_headers.dropsOriginal(kTraceParent) || ctx.request.head == nullptr ||
                  ctx.request.head->count(kTraceParent) <= 1;
    if (found && single && parseTraceParent(incoming, trace)) {
      char* caller = static_cast<char*>(ctx.arena().allocate(sizeof trace.parent_id, 1));
      std::memcpy(caller, trace.parent_id, sizeof trace.parent_id);
      ctx.parent_span_id = std::string_view(caller, sizeof trace.parent_id);
      randomHex(trace.parent_id, sizeof trace.parent_id);  // our hop: a child span
    } else {
      randomHex(trace.trace_id, sizeof trace.trace_id);
      randomHex(trace.parent_id, sizeof trace.parent_id);
      trace.flags = sample_below_ == UINT64_MAX || nextRandom() < sample_below_ ? 1 : 0;
      // A tracestate describes the trace it came with, which is not this one.
      ctx.request_headers.remove(kTraceState);
    }
    char* out = static_cast<char*>(ctx.arena().allocate(kTraceParentLength, 1));
    formatTraceParent(trace, out);
    ctx.traceparent = std::string_view(out, kTraceParentLength);
    ctx.request_headers.set(kTraceParent, ctx.traceparent);
    return filter::Status::Continue;
  }

 private:
  uint64_t sample_below_;
};

class Factory final : public filter::FilterFactory {
 public:
  explicit Factory(uint64_t sample_below) : sample_below_(sample_below) {}
  filter::Filter* create(filter::Context& ctx) const override {
    return ctx.arena().make<Trace>(sample_below_);
  }

 private:
  uint64_t sample_below_;  // a new trace is sampled when a random uint64 is below this
                           // (UINT64_MAX: always)
};

}  // namespace

bool parseTraceParent(std::string_view text, TraceParent& out) {
  if (text.size() < kTraceParentLength) return false;
  int v0 = hexValue(text[0]), v1 = hexValue(text[1]);
  if (v0 < 0 || v1 < 0) return false;
  int version = v0 * 16 + v1;
  if (version == 0xff) return false;
  if (version == 0 && text.size() != kTraceParentLength) return false;
  if (version != 0 && text.size() > kTraceParentLength && text[kTraceParentLength] != '-') {
    return false;
  }
  if (text[2] != '-' || text[35] != '-' || text[52] != '-') return false;
  std::string_view trace_id = text.substr(3, 32);
  std::string_view parent_id = text.substr(36, 16);
  int f0 = hexValue(text[53]), f1 = hexValue(text[54]);
  if (!isId(trace_id) || !isId(parent_id) || f0 < 0 || f1 < 0) return false;
  trace_id.copy(out.trace_id, sizeof out.trace_id);
  parent_id.copy(out.parent_id, sizeof out.parent_id);
  out.flags = static_cast<uint8_t>(f0 * 16 + f1);
  return true;
}

void formatTraceParent(const TraceParent& trace, char out[kTraceParentLength]) {
  size_t at = 0;
  out[at++] = '0';
  out[at++] = '0';
  out[at++] = '-';
  for (char c : trace.trace_id) out[at++] = c;
  out[at++] = '-';
  for (char c : trace.parent_id) out[at++] = c;
  out[at++] = '-';
  out[at++] = kHex[trace.flags >> 4];
  out[at++] = kHex[trace.flags & 15];
}

void randomHex(char* out, size_t count) {
  uint64_t any = 0;
  do {  // all zero is invalid: 1 in 2^64 or less, draw again
    any = 0;
    for (size_t i = 0; i < count; i += 16) {
      size_t n = count - i < 16 ? count - i : 16;
      uint64_t bits = nextRandom();
      if (n < 16) bits &= (uint64_t{1} << (4 * n)) - 1;
      any |= bits;
      for (size_t j = 0; j < n; ++j, bits >>= 4) out[i + j] = kHex[bits & 15];
    }
  } while (any == 0);
}

std::vector<std::string_view> keys() { return {"sample_rate"}; }

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table) {
  double rate = 1.0;
  if (table.find("sample_rate") != nullptr && !table.getNumber("sample_rate", 0.0, 1.0, rate)) {
    return nullptr;
  }
  // rate * 2^64, saturated: 1.0 samples every trace, 0.0 none.
  uint64_t below = rate >= 1.0 ? UINT64_MAX : static_cast<uint64_t>(rate * 18446744073709551616.0);
  return std::make_shared<Factory>(below);
}

}  // namespace gw::filters::trace
