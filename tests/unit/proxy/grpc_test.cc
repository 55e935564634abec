#define CATCH_CONFIG_MAIN
#include "gateway/proxy/grpc.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "gateway/proxy/messages.h"

namespace gw::proxy {
namespace {

TEST_CASE("gRPC content types") {
  CHECK(grpc::isGrpcContentType("application/grpc"));
  CHECK(grpc::isGrpcContentType("application/grpc+proto"));
  CHECK(grpc::isGrpcContentType("Application/GRPC+json"));
  CHECK(grpc::isGrpcContentType("application/grpc; charset=utf-8"));
  CHECK(grpc::isGrpcContentType(" application/grpc "));
  CHECK_FALSE(grpc::isGrpcContentType("application/grpc-web"));
  CHECK_FALSE(grpc::isGrpcContentType("application/grpcx"));
  CHECK_FALSE(grpc::isGrpcContentType("application/json"));
  CHECK_FALSE(grpc::isGrpcContentType(""));
}

TEST_CASE("grpc-timeout: 1 to 8 digits and a unit, in milliseconds rounded up") {
  CHECK(grpc::parseTimeout("1H") == 3'600'000u);
  CHECK(grpc::parseTimeout("2M") == 120'000u);
  CHECK(grpc::parseTimeout("3S") == 3000u);
  CHECK(grpc::parseTimeout("250m") == 250u);
  CHECK(grpc::parseTimeout("1500u") == 2u);
  CHECK(grpc::parseTimeout("1000u") == 1u);
  CHECK(grpc::parseTimeout("1n") == 1u);
  CHECK(grpc::parseTimeout("0m") == 0u);
  CHECK(grpc::parseTimeout("99999999S") == 99'999'999'000u);
  SECTION("malformed values are refused (the header is then ignored)") {
    for (const char* bad :
         {"", "m", "100", "123456789m", "1x", "-1m", "1.5S", "1 m", "1mm", " 1m", "1h", "1s"}) {
      INFO(bad);
      CHECK_FALSE(grpc::parseTimeout(bad).has_value());
    }
  }
}

TEST_CASE("local reply statuses map to gRPC statuses") {
  CHECK(grpc::statusFor(400) == grpc::kInternal);
  CHECK(grpc::statusFor(401) == grpc::kUnauthenticated);
  CHECK(grpc::statusFor(403) == grpc::kPermissionDenied);
  CHECK(grpc::statusFor(404) == grpc::kUnimplemented);
  CHECK(grpc::statusFor(413) == grpc::kResourceExhausted);
  CHECK(grpc::statusFor(429) == grpc::kResourceExhausted);
  CHECK(grpc::statusFor(502) == grpc::kUnavailable);
  CHECK(grpc::statusFor(503) == grpc::kUnavailable);
  CHECK(grpc::statusFor(504) == grpc::kDeadlineExceeded);
  CHECK(grpc::statusFor(500) == grpc::kUnknown);
  CHECK(grpc::statusFor(418) == grpc::kUnknown);
}

TEST_CASE("grpc-message is percent-encoded") {
  std::string out;
  grpc::appendPercentEncoded(out, "no route");
  CHECK(out == "no route");
  out.clear();
  grpc::appendPercentEncoded(out, "100% sure\r\n\xc3\xa9");
  CHECK(out == "100%25 sure%0D%0A%C3%A9");
}

TEST_CASE("a gRPC local reply is trailers-only") {
  LocalReplyExtras extras;
  SECTION("HTTP/1.1: chunked, the grpc fields as trailers") {
    extras.grpc = GrpcReply::Trailers;
    std::string out;
    writeLocalReply(503, "no healthy endpoint", false, false, extras, out);
    CHECK(out ==
          "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\n"
          "transfer-encoding: chunked\r\n\r\n"
          "0\r\ngrpc-status: 14\r\ngrpc-message: no healthy endpoint\r\n\r\n");
  }
  SECTION("HTTP/2: one head, no body") {
    extras.grpc = GrpcReply::InHead;
    std::string out;
    writeLocalReply(429, "rate limited: 100%", true, false, extras, out);
    CHECK(out ==
          "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ncontent-length: 0\r\n"
          "connection: close\r\ngrpc-status: 8\r\ngrpc-message: rate limited: 100%25\r\n\r\n");
  }
}

// A MessageHead over fields laid out back to back.
struct Fields {
  std::string bytes;
  std::vector<http::HeaderSpan> spans;
  http::MessageHead head() const {
    http::MessageHead h;
    h.base = bytes.data();
    h.spans = spans.data();
    h.header_count = spans.size();
    return h;
  }
  void add(std::string_view name, std::string_view value) {
    http::HeaderSpan s;
    s.name = {static_cast<uint32_t>(bytes.size()), static_cast<uint32_t>(name.size())};
    bytes.append(name);
    s.value = {static_cast<uint32_t>(bytes.size()), static_cast<uint32_t>(value.size())};
    bytes.append(value);
    spans.push_back(s);
  }
};

TEST_CASE("trailer sections keep end-to-end fields only") {
  Fields f;
  f.add("grpc-status", "0");
  f.add("Content-Length", "5");
  f.add("Transfer-Encoding", "chunked");
  f.add("host", "evil");
  f.add("Connection", "close");
  f.add("x-checksum", "abc");
  std::string out = "prefix";
  CHECK(writeTrailerSection(f.head(), out));
  CHECK(out == "prefix0\r\ngrpc-status: 0\r\nx-checksum: abc\r\n\r\n");
  SECTION("nothing forwardable: nothing written") {
    Fields only_framing;
    only_framing.add("content-length", "1");
    std::string none;
    CHECK_FALSE(writeTrailerSection(only_framing.head(), none));
    CHECK(none.empty());
  }
}

}  // namespace
}  // namespace gw::proxy
