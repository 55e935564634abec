#define CATCH_CONFIG_MAIN
#include "gateway/http2/fields.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

namespace gw::http2 {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

const Fields kBase = {
    {":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/a?b=1"}};

// Adds every field; returns the first problem (or of finish()), null when valid.
const char* build(RequestHeadBuilder& b, const Fields& fields, bool end_stream = true) {
  b.reset();
  for (const auto& [name, value] : fields) {
    if (const char* problem = b.add(name, value)) return problem;
  }
  return b.finish(end_stream);
}

Fields with(Fields extra) {
  Fields out = kBase;
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

Fields headers(const http::MessageHead& head) {
  Fields out;
  for (size_t i = 0; i < head.header_count; ++i) {
    out.emplace_back(std::string(head.name(i)), std::string(head.value(i)));
  }
  return out;
}

TEST_CASE("a request becomes an HTTP/1.1 head with Host from :authority") {
  RequestHeadBuilder b;
  REQUIRE(build(b, with({{"user-agent", "t"}, {"accept", "*/*"}})) == nullptr);
  const http::MessageHead& head = b.head();
  CHECK(head.method == HTTP_GET);
  CHECK(head.url == "/a?b=1");
  CHECK(head.http_major == 1);
  CHECK(head.http_minor == 1);
  CHECK(head.keep_alive);
  CHECK_FALSE(head.chunked);
  CHECK(headers(head) == Fields{{"host", "example.com"}, {"user-agent", "t"}, {"accept", "*/*"}});
}

TEST_CASE("a body without content-length goes upstream chunked; with one, as is") {
  RequestHeadBuilder b;
  REQUIRE(build(b, with({}), false) == nullptr);
  CHECK(b.head().chunked);
  REQUIRE(build(b, with({{"content-length", "5"}}), false) == nullptr);
  CHECK_FALSE(b.head().chunked);
  CHECK(b.head().has_content_length);
  CHECK(b.head().content_length == 5);
  // END_STREAM on HEADERS with a non-zero content-length: the body cannot match.
  CHECK(build(b, with({{"content-length", "5"}}), true) != nullptr);
  CHECK(build(b, with({{"content-length", "0"}}), true) == nullptr);
}

TEST_CASE("malformed requests are refused (RFC 9113 8.2, 8.3)") {
  RequestHeadBuilder b;
  CHECK(build(b, with({{"Accept", "x"}})) != nullptr);               // uppercase name
  CHECK(build(b, with({{"connection", "keep-alive"}})) != nullptr);  // connection-specific
  CHECK(build(b, with({{"keep-alive", "1"}})) != nullptr);
  CHECK(build(b, with({{"transfer-encoding", "chunked"}})) != nullptr);
  CHECK(build(b, with({{"upgrade", "websocket"}})) != nullptr);
  CHECK(build(b, with({{"proxy-connection", "x"}})) != nullptr);
  CHECK(build(b, with({{"te", "gzip"}})) != nullptr);  // only "trailers"
  CHECK(build(b, with({{"te", "trailers"}})) == nullptr);
  CHECK(headers(b.head()).size() == 1);                           // te is not forwarded
  CHECK(build(b, with({{"x", "a\r\nInjected: 1"}})) != nullptr);  // smuggling through a value
  CHECK(build(b, with({{"x", " padded"}})) != nullptr);
  CHECK(build(b, with({{"bad name", "v"}})) != nullptr);
  CHECK(build(b, with({{"content-length", "abc"}})) != nullptr);
  CHECK(build(b, with({{"content-length", "1"}, {"content-length", "2"}}), false) != nullptr);
  CHECK(build(b, with({{":path", "/again"}})) != nullptr);  // pseudo after regular... and again
  CHECK(build(b, {{":method", "GET"}, {":method", "GET"}, {":scheme", "http"}, {":path", "/"}}) !=
        nullptr);
  CHECK(build(b, {{":method", "GET"}, {"x", "1"}, {":scheme", "http"}, {":path", "/"}}) != nullptr);
  CHECK(build(b, {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":status", "200"}}) !=
        nullptr);
  CHECK(build(b, {{":method", "GET"}, {":scheme", "http"}}) != nullptr);  // no :path
  CHECK(build(b, {{":method", "GET"}, {":scheme", "http"}, {":path", ""}}) != nullptr);
  CHECK(build(b, {{":method", "BREW"}, {":scheme", "http"}, {":path", "/"}}) != nullptr);
  CHECK(build(b, with({{"host", "other.example"}})) != nullptr);  // Host differs from :authority
}

TEST_CASE("a Host equal to :authority is kept once; Host alone is used as is") {
  RequestHeadBuilder b;
  REQUIRE(build(b, with({{"host", "EXAMPLE.com"}})) == nullptr);
  CHECK(headers(b.head()) == Fields{{"host", "example.com"}});
  REQUIRE(build(b, {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {"host", "h.test"}}) ==
          nullptr);
  CHECK(headers(b.head()) == Fields{{"host", "h.test"}});
}

TEST_CASE("cookie fields are joined into one (RFC 9113 8.2.3)") {
  RequestHeadBuilder b;
  REQUIRE(build(b, with({{"cookie", "a=1"}, {"x", "y"}, {"cookie", "b=2"}})) == nullptr);
  CHECK(headers(b.head()) == Fields{{"host", "example.com"}, {"cookie", "a=1; b=2"}, {"x", "y"}});
}

TEST_CASE("methods map to llhttp's") {
  CHECK(methodFromName("GET") == HTTP_GET);
  CHECK(methodFromName("PROPFIND") == HTTP_PROPFIND);
  CHECK(methodFromName("get") == -1);
  CHECK(methodFromName("") == -1);
}

TEST_CASE("the decoded list size counts 32 octets per field") {
  RequestHeadBuilder b;
  b.reset();
  REQUIRE(b.add(":method", "GET") == nullptr);
  CHECK(b.listSize() == 7 + 3 + 32);
}

// A response head as the HTTP/1 parser would hand it over.
struct Head {
  std::string bytes;
  std::vector<http::HeaderSpan> spans;
  http::MessageHead head;
  Head(int status, const Fields& fields) {
    for (const auto& [n, v] : fields) {
      http::HeaderSpan s;
      s.name = {static_cast<uint32_t>(bytes.size()), static_cast<uint32_t>(n.size())};
      bytes += n;
      s.value = {static_cast<uint32_t>(bytes.size()), static_cast<uint32_t>(v.size())};
      bytes += v;
      spans.push_back(s);
    }
    head.base = bytes.data();
    head.spans = spans.data();
    head.header_count = spans.size();
    head.status = status;
  }
};

TEST_CASE("response fields: lowercase, connection-specific ones dropped") {
  Head h(404, {{"Content-Type", "text/plain"},
               {"Connection", "close, X-Hop"},
               {"X-Hop", "1"},
               {"Keep-Alive", "timeout=5"},
               {"Transfer-Encoding", "chunked"},
               {"Set-Cookie", "a=1"},
               {"Content-Length", "3"}});
  ResponseFields f;
  toResponseFields(h.head, f);
  CHECK(std::string(f.status, 3) == "404");
  Fields got;
  for (size_t i = 0; i < f.fields.size(); ++i) {
    got.emplace_back(std::string(f.name(i)), std::string(f.value(i)));
  }
  CHECK(got ==
        Fields{{"content-type", "text/plain"}, {"set-cookie", "a=1"}, {"content-length", "3"}});
}

Fields requestFields(const Head& h, std::string_view scheme) {
  RequestFields f;
  toRequestFields(h.head, scheme, f);
  Fields got;
  for (size_t i = 0; i < f.fields.size(); ++i) {
    got.emplace_back(std::string(f.name(i)), std::string(f.value(i)));
  }
  return got;
}

TEST_CASE("request fields: pseudo-fields first, Host as :authority, hop-by-hop dropped") {
  Head h(0, {{"Host", "api.example.com"},
             {"Connection", "keep-alive, X-Hop"},
             {"X-Hop", "1"},
             {"Keep-Alive", "timeout=5"},
             {"Upgrade", "websocket"},
             {"X-Forwarded-For", "10.0.0.1"},
             {"Content-Length", "5"}});
  h.head.method = HTTP_POST;
  h.head.url = "/a?b=1";
  CHECK(requestFields(h, "https") == Fields{{":method", "POST"},
                                            {":scheme", "https"},
                                            {":authority", "api.example.com"},
                                            {":path", "/a?b=1"},
                                            {"x-forwarded-for", "10.0.0.1"},
                                            {"content-length", "5"}});
}

TEST_CASE("request fields: TE only as trailers; a chunked body drops content-length") {
  Head h(0, {{"Host", "h"}, {"TE", "gzip, trailers"}, {"Transfer-Encoding", "chunked"}});
  h.head.method = HTTP_GET;
  h.head.url = "/";
  h.head.chunked = true;
  CHECK(requestFields(h, "http") == Fields{{":method", "GET"},
                                           {":scheme", "http"},
                                           {":authority", "h"},
                                           {":path", "/"},
                                           {"te", "trailers"}});
  Head plain(0, {{"Host", "h"}, {"TE", "gzip"}});
  plain.head.method = HTTP_GET;
  plain.head.url = "/";
  CHECK(requestFields(plain, "http").size() == 4);
}

TEST_CASE("request fields: a gRPC request gets te: trailers back (an HTTP/1 hop dropped it)") {
  Head grpc(0, {{"Host", "h"}, {"Content-Type", "application/grpc+proto"}});
  grpc.head.method = HTTP_POST;
  grpc.head.url = "/pkg.Svc/Call";
  CHECK(requestFields(grpc, "http") == Fields{{":method", "POST"},
                                              {":scheme", "http"},
                                              {":authority", "h"},
                                              {":path", "/pkg.Svc/Call"},
                                              {"content-type", "application/grpc+proto"},
                                              {"te", "trailers"}});
  // Once only, when the request kept its TE.
  Head both(0, {{"Host", "h"}, {"TE", "trailers"}, {"Content-Type", "application/grpc"}});
  both.head.method = HTTP_POST;
  both.head.url = "/";
  Fields got = requestFields(both, "http");
  CHECK(std::count(got.begin(), got.end(), std::pair<std::string, std::string>{"te", "trailers"}) ==
        1);
  // Not for other content types.
  Head json(0, {{"Host", "h"}, {"Content-Type", "application/json"}});
  json.head.method = HTTP_POST;
  json.head.url = "/";
  CHECK(requestFields(json, "http").size() == 5);
}

}  // namespace
}  // namespace gw::http2
