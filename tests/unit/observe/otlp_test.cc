#define CATCH_CONFIG_MAIN
#include "gateway/observe/otlp.h"

#include <catch2/catch.hpp>
#include <string>

using namespace gw::observe;

namespace {

SpanRecord sample() {
  SpanRecord s;
  s.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  s.span_id = "00f067aa0ba902b7";
  s.parent_span_id = "b7ad6b7169203331";
  s.name = "api";
  s.start_unix_ns = 1700000000000000000ull;
  s.end_unix_ns = 1700000000001500000ull;
  s.method = "GET";
  s.path = "/v1/items";
  s.status = 200;
  s.upstream = "10.0.0.1:8080";
  return s;
}

}  // namespace

TEST_CASE("a span as OTLP/JSON: hex ids, string nanos, kind SERVER, attributes") {
  std::string out;
  appendOtlpSpan(sample(), out);
  CHECK(out ==
        "{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"00f067aa0ba902b7\","
        "\"parentSpanId\":\"b7ad6b7169203331\",\"name\":\"api\",\"kind\":2,"
        "\"startTimeUnixNano\":\"1700000000000000000\","
        "\"endTimeUnixNano\":\"1700000000001500000\",\"attributes\":["
        "{\"key\":\"http.request.method\",\"value\":{\"stringValue\":\"GET\"}},"
        "{\"key\":\"url.path\",\"value\":{\"stringValue\":\"/v1/items\"}},"
        "{\"key\":\"http.response.status_code\",\"value\":{\"intValue\":\"200\"}},"
        "{\"key\":\"server.address\",\"value\":{\"stringValue\":\"10.0.0.1:8080\"}}]}");
}

TEST_CASE("a root span has no parentSpanId; a 5xx or no response is an ERROR") {
  SpanRecord s = sample();
  s.parent_span_id = {};
  s.status = 502;
  s.upstream = {};
  std::string out;
  appendOtlpSpan(s, out);
  CHECK(out.find("parentSpanId") == std::string::npos);
  CHECK(out.find("server.address") == std::string::npos);
  CHECK(out.find("{\"intValue\":\"502\"}") != std::string::npos);
  CHECK(out.ends_with("],\"status\":{\"code\":2}}"));

  s.status = 0;  // the client left first: no status code attribute
  out.clear();
  appendOtlpSpan(s, out);
  CHECK(out.find("http.response.status_code") == std::string::npos);
  CHECK(out.ends_with(",\"status\":{\"code\":2}}"));

  s.status = 404;  // a 4xx is the client's error, not the server span's
  out.clear();
  appendOtlpSpan(s, out);
  CHECK(out.find("\"status\"") == std::string::npos);
}

TEST_CASE("strings from the request are escaped") {
  SpanRecord s = sample();
  s.path = "/a\"b\\c\x01\xc3\xa9";
  s.name = "r\n";
  std::string out;
  appendOtlpSpan(s, out);
  CHECK(out.find("\"stringValue\":\"/a\\\"b\\\\c\\u0001\xc3\xa9\"") != std::string::npos);
  CHECK(out.find("\"name\":\"r\\u000a\"") != std::string::npos);
}

TEST_CASE("the export request wraps the spans in resourceSpans and scopeSpans") {
  std::string out;
  appendOtlpRequest("edge \"1\"", "{\"a\":1},{\"b\":2}", out);
  CHECK(out ==
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
        "\"value\":{\"stringValue\":\"edge \\\"1\\\"\"}}]},\"scopeSpans\":[{\"scope\":"
        "{\"name\":\"gateway\"},\"spans\":[{\"a\":1},{\"b\":2}]}]}]}");
}
