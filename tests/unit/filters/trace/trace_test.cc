#define CATCH_CONFIG_MAIN
#include "filters/trace/trace.h"

#include <catch2/catch.hpp>
#include <set>
#include <string>

#include "gateway/config/loader.h"
#include "gateway/filter/registry.h"

using namespace gw;
using namespace gw::filters::trace;

namespace {

const std::string kValid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

bool valid(std::string_view text) {
  TraceParent t;
  return parseTraceParent(text, t);
}

std::string format(const TraceParent& t) {
  char out[kTraceParentLength];
  formatTraceParent(t, out);
  return std::string(out, kTraceParentLength);
}

// Builds the filter from TOML text the way the loader does, or returns the errors.
struct Built {
  std::shared_ptr<const filter::FilterFactory> factory;
  std::string errors;
};

Built build(const std::string& toml_text) {
  struct Errors final : filter::ConfigErrors {
    std::string text;
    void error(const toml::source_region& where, std::string reason) override {
      text += std::to_string(where.begin.line) + ":" + std::to_string(where.begin.column) + ": " +
              reason + "\n";
    }
  } errors;
  toml::parse_result parsed = toml::parse(toml_text, std::string_view("t.toml"));
  REQUIRE(parsed);
  filter::ConfigTable table(errors, parsed.table(), "trace", keys());
  Built out;
  out.factory = parse(table);
  out.errors = errors.text;
  return out;
}

// Runs the request phase with `incoming` as the request's headers; returns the
// traceparent and tracestate that go upstream ("" when none).
std::pair<std::string, std::string> hop(
    const filter::FilterFactory& factory,
    const std::vector<std::pair<std::string, std::string>>& incoming) {
  filter::Context ctx;
  for (const auto& [name, value] : incoming) ctx.request_headers.add(name, value);
  filter::Filter* f = factory.create(ctx);
  REQUIRE(f->onRequestHeaders(ctx) == filter::Status::Continue);
  std::string_view parent, state;
  ctx.request_headers.find(nullptr, "traceparent", parent);
  ctx.request_headers.find(nullptr, "tracestate", state);
  auto out = std::make_pair(std::string(parent), std::string(state));
  f->onDestroy(ctx);
  ctx.reset();
  return out;
}

}  // namespace

TEST_CASE("traceparent: the spec's example and its fields") {
  TraceParent t;
  REQUIRE(parseTraceParent(kValid, t));
  CHECK(std::string(t.trace_id, 32) == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(std::string(t.parent_id, 16) == "00f067aa0ba902b7");
  CHECK(t.flags == 1);
  CHECK(format(t) == kValid);
  REQUIRE(valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
}

TEST_CASE("traceparent: invalid values") {
  CHECK_FALSE(valid(""));
  CHECK_FALSE(valid(kValid.substr(0, 54)));
  CHECK_FALSE(valid(kValid + "-"));  // version 00 is exactly 55
  CHECK_FALSE(valid(kValid + "x"));
  CHECK_FALSE(valid("ff" + kValid.substr(2)));  // version ff is forbidden
  CHECK_FALSE(valid("0g" + kValid.substr(2)));  // version not hex
  CHECK_FALSE(valid("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));  // zero trace
  CHECK_FALSE(valid("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));  // zero parent
  CHECK_FALSE(valid("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));  // uppercase
  CHECK_FALSE(valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0X"));
  CHECK_FALSE(valid("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  CHECK_FALSE(valid("00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01"));  // misplaced dash
  CHECK_FALSE(valid(" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0"));
}

TEST_CASE("traceparent: a later version is read by its version-00 prefix") {
  TraceParent t;
  REQUIRE(parseTraceParent("01" + kValid.substr(2), t));
  REQUIRE(parseTraceParent("cc" + kValid.substr(2) + "-what-the-future-holds", t));
  CHECK(format(t) == kValid);                         // and goes on as version 00
  CHECK_FALSE(valid("cc" + kValid.substr(2) + "x"));  // the rest must start with '-'
}

TEST_CASE("random ids are lowercase hex, never all zero, and differ") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    char id[32];
    randomHex(id, sizeof id);
    std::string s(id, sizeof id);
    REQUIRE(s.find_first_not_of("0123456789abcdef") == std::string::npos);
    REQUIRE(s != std::string(32, '0'));
    seen.insert(s);
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("a valid incoming trace keeps its id and flags, with a new parent id") {
  Built b = build("type = \"trace\"\n");
  REQUIRE(b.errors.empty());
  auto [parent, state] = hop(*b.factory, {{"traceparent", kValid}, {"tracestate", "a=1,b=2"}});
  TraceParent in, out;
  REQUIRE(parseTraceParent(kValid, in));
  REQUIRE(parseTraceParent(parent, out));
  CHECK(std::string(out.trace_id, 32) == std::string(in.trace_id, 32));
  CHECK(std::string(out.parent_id, 16) != std::string(in.parent_id, 16));
  CHECK(out.flags == in.flags);
  CHECK(state == "a=1,b=2");
  // an unsampled caller stays unsampled even with sample_rate = 1
  auto unsampled = hop(*b.factory, {{"traceparent", kValid.substr(0, 53) + "00"}});
  REQUIRE(parseTraceParent(unsampled.first, out));
  CHECK(out.flags == 0);
}

TEST_CASE("no or an invalid traceparent starts a new trace and drops tracestate") {
  Built b = build("type = \"trace\"\n");
  REQUIRE(b.errors.empty());
  std::set<std::string> traces;
  for (std::string bad :
       {"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}) {
    std::vector<std::pair<std::string, std::string>> incoming = {{"tracestate", "a=1"}};
    if (!bad.empty()) incoming.push_back({"traceparent", bad});
    auto [parent, state] = hop(*b.factory, incoming);
    TraceParent out;
    REQUIRE(parseTraceParent(parent, out));
    CHECK(out.flags == 1);  // sample_rate defaults to 1
    CHECK(state.empty());
    traces.insert(std::string(out.trace_id, 32));
  }
  CHECK(traces.size() == 3);
}

TEST_CASE("sample_rate sets the sampled flag of new traces") {
  Built none = build("type = \"trace\"\nsample_rate = 0\n");
  REQUIRE(none.errors.empty());
  Built half = build("type = \"trace\"\nsample_rate = 0.5\n");
  REQUIRE(half.errors.empty());
  int sampled = 0;
  for (int i = 0; i < 400; ++i) {
    TraceParent t;
    REQUIRE(parseTraceParent(hop(*none.factory, {}).first, t));
    REQUIRE(t.flags == 0);
    REQUIRE(parseTraceParent(hop(*half.factory, {}).first, t));
    sampled += t.flags & 1;
  }
  // Binomial(400, 0.5): outside 100..300 has a probability far below 1e-20.
  CHECK(sampled > 100);
  CHECK(sampled < 300);
}

TEST_CASE("config errors point at the value") {
  Built b = build("type = \"trace\"\nsample_rate = 1.5\n");
  CHECK(b.factory == nullptr);
  CHECK(b.errors == "2:15: filter \"trace\": \"sample_rate\" must be between 0 and 1 (got 1.5)\n");
  b = build("type = \"trace\"\nsample_rate = \"all\"\n");
  CHECK(b.factory == nullptr);
  CHECK_THAT(b.errors,
             Catch::StartsWith("2:15: filter \"trace\": \"sample_rate\" must be a number"));
}

TEST_CASE("through the config loader: file:line:col and unknown keys") {
  static bool registered = [] {
    filter::Registry::global().add("trace", &parse, keys());
    return true;
  }();
  (void)registered;
  config::LoadResult result = config::loadConfigString(R"([[listeners]]
listen = "127.0.0.1:0"

[[filters]]
type = "trace"
sample_rat = 0.1

[[routes]]
service = "s"
filters = [{ type = "trace", sample_rate = -1 }]

[services.s]
pools.main.endpoints = ["127.0.0.1:9"]
)",
                                                       "t.toml");
  REQUIRE(result.errors.size() == 2);
  CHECK_THAT(result.errors[0].toString(),
             Catch::StartsWith("t.toml:6:1: filter \"trace\": unknown key \"sample_rat\""));
  CHECK_THAT(result.errors[1].toString(),
             Catch::StartsWith("t.toml:10:44: filter \"trace\": \"sample_rate\" must be between"));
}
