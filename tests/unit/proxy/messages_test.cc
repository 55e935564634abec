#define CATCH_CONFIG_MAIN
#include "gateway/proxy/messages.h"

#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/http/hop_by_hop.h"
#include "gateway/http/parser.h"

namespace gw::proxy {
namespace {

using http::MessageHead;
using http::MessageSink;
using http::Parser;

// ---- helpers ----------------------------------------------------------------------------

// Parses `raw` (one message head) and calls `use` inside onHead, where the views are valid.
class HeadSink : public MessageSink {
 public:
  explicit HeadSink(std::function<void(const MessageHead&)> use) : use_(std::move(use)) {}
  int onHead(const MessageHead& head) override {
    use_(head);
    ++heads;
    return kContinue;
  }
  int onBody(const char*, size_t) override { return kContinue; }
  bool onMessageComplete() override { return false; }
  int heads = 0;

 private:
  std::function<void(const MessageHead&)> use_;
};

void withHead(llhttp_type_t type, const std::string& raw,
              const std::function<void(const MessageHead&)>& use) {
  HeadSink sink(use);
  Parser parser(type, &sink);
  Parser::Outcome outcome = parser.feed(raw.data(), raw.size());
  REQUIRE(outcome != Parser::Outcome::Error);
  REQUIRE(sink.heads == 1);
}

std::string upstreamHead(const std::string& raw, UpstreamRequest request) {
  std::string out;
  withHead(HTTP_REQUEST, raw, [&](const MessageHead& head) {
    request.head = &head;
    writeUpstreamRequestHead(request, out);
  });
  return out;
}

std::string downstreamHead(const std::string& raw, DownstreamResponse response) {
  std::string out;
  withHead(HTTP_RESPONSE, raw, [&](const MessageHead& head) {
    response.head = &head;
    writeDownstreamResponseHead(response, out);
  });
  return out;
}

// The lines of a head, without the terminating blank line (which must be there).
std::vector<std::string> lines(const std::string& head) {
  std::vector<std::string> out;
  REQUIRE(head.size() >= 4);
  REQUIRE(head.compare(head.size() - 4, 4, "\r\n\r\n") == 0);
  size_t start = 0;
  while (start < head.size() - 2) {
    size_t end = head.find("\r\n", start);
    out.push_back(head.substr(start, end - start));
    start = end + 2;
  }
  return out;
}

// The values of every field named `name` (exact case), in order.
std::vector<std::string> values(const std::string& head, std::string_view name) {
  std::vector<std::string> out;
  for (const std::string& line : lines(head)) {
    size_t colon = line.find(": ");
    if (colon != std::string::npos && http::equalsIgnoreCase(line.substr(0, colon), name)) {
      out.push_back(line.substr(colon + 2));
    }
  }
  return out;
}

UpstreamRequest baseRequest(const config::Forwarding& forwarding) {
  UpstreamRequest r;
  r.method = "GET";
  r.target = "/";
  r.forwarding = &forwarding;
  r.client_ip = "192.0.2.7";
  return r;
}

// ---- parseRequestTarget -----------------------------------------------------------------

TEST_CASE("parseRequestTarget: origin-form") {
  RequestTarget t;
  REQUIRE(parseRequestTarget("/a/b?x=1&y=2", false, t));
  CHECK(t.path_and_query == "/a/b?x=1&y=2");
  CHECK(t.path == "/a/b");
  CHECK(t.authority.empty());

  REQUIRE(parseRequestTarget("/", false, t));
  CHECK(t.path == "/");
  REQUIRE(parseRequestTarget("/only?", false, t));
  CHECK(t.path == "/only");
  CHECK(t.path_and_query == "/only?");
}

TEST_CASE("parseRequestTarget: absolute-form") {
  struct Case {
    const char* url;
    const char* authority;
    const char* path_and_query;
    const char* path;
  };
  const Case cases[] = {
      {"http://example.com/p?q=1", "example.com", "/p?q=1", "/p"},
      {"http://example.com", "example.com", "/", "/"},
      {"http://example.com/", "example.com", "/", "/"},
      {"https://example.com:8443/x/y", "example.com:8443", "/x/y", "/x/y"},
      {"https://example.com:8443", "example.com:8443", "/", "/"},
      {"HTTP://Example.COM/Case", "Example.COM", "/Case", "/Case"},
      {"http://[::1]:8080/v6", "[::1]:8080", "/v6", "/v6"},
  };
  for (const Case& c : cases) {
    INFO(c.url);
    RequestTarget t;
    REQUIRE(parseRequestTarget(c.url, false, t));
    CHECK(t.authority == c.authority);
    CHECK(t.path_and_query == c.path_and_query);
    CHECK(t.path == c.path);
  }
}

TEST_CASE("parseRequestTarget: asterisk-form only for OPTIONS") {
  RequestTarget t;
  REQUIRE(parseRequestTarget("*", true, t));
  CHECK(t.path_and_query == "*");
  CHECK(t.path == "*");
  CHECK(t.authority.empty());
  CHECK_FALSE(parseRequestTarget("*", false, t));
}

TEST_CASE("parseRequestTarget rejects other forms") {
  const char* cases[] = {
      "",                        // empty
      "foo",                     // no scheme, no slash
      "example.com:443",         // authority-form (CONNECT only)
      "ftp://x/",                // not http(s)
      "ws://x/",                 // not http(s)
      "http:///x",               // empty host
      "http://",                 // empty host, no path
      "http://user@host/",       // userinfo
      "https://user:pw@host/p",  // userinfo with password
      "http://host?q",           // query without path
      "*x",                      // asterisk-form is exactly "*"
  };
  for (const char* url : cases) {
    INFO(url);
    RequestTarget t;
    CHECK_FALSE(parseRequestTarget(url, true, t));
  }
}

// ---- validHost --------------------------------------------------------------------------

TEST_CASE("validHost accepts reg-names, IP literals and ports") {
  const char* cases[] = {
      "",  // no authority
      "example.com",
      "example.com:8080",
      "EXAMPLE.com",
      "a-b_c~d.example",
      "10.0.0.1",
      "10.0.0.1:80",
      "[::1]",
      "[::1]:8443",
      "[2001:db8::1]",
      "xn--bcher-kva.example",
      "host%2Ename",
      "example.com:",  // an empty port is allowed (RFC 3986 §3.2.3)
      "[::1]:",
  };
  for (const char* host : cases) {
    INFO(host);
    CHECK(validHost(host));
  }
}

TEST_CASE("validHost rejects what could split or smuggle a field or a target") {
  const char* cases[] = {
      "a b",  "a\tb", "a/b",  "a?b", "a#b", "user@host", "a\"b",
      "a\\b", "a<b>", "a{b}", "a|b", "a^b", "a`b",       "caf\xc3\xa9",
  };
  for (const char* host : cases) {
    INFO(host);
    CHECK_FALSE(validHost(host));
  }
  // The shape: a port of digits only, brackets only around a whole IP literal.
  const char* shapes[] = {"a.example:8a", "a.example:80:80", "a:-1",         "[::1",
                          "::1]",         "[::1]x",          "[::1]:8a",     "[[::1]]",
                          "a[b]",         "[::1]]",          "a.example:+80"};
  for (const char* host : shapes) {
    INFO(host);
    CHECK_FALSE(validHost(host));
  }
  CHECK_FALSE(validHost(std::string_view("a\0b", 3)));
  CHECK_FALSE(validHost("a\r\nX-Injected: 1"));
  CHECK_FALSE(validHost("a\x7f"));
}

TEST_CASE("sameAuthority: case-insensitive, a default port on one side only") {
  CHECK(sameAuthority("http", "a.example", "A.Example"));
  CHECK(sameAuthority("http", "a.example:80", "a.example"));
  CHECK(sameAuthority("http", "a.example", "a.example:80"));
  CHECK(sameAuthority("HTTPS", "a.example", "a.example:443"));
  CHECK(sameAuthority("http", "[::1]:8080", "[::1]:8080"));
  CHECK_FALSE(sameAuthority("http", "a.example", "b.example"));
  CHECK_FALSE(sameAuthority("http", "a.example:8080", "a.example"));
  CHECK_FALSE(sameAuthority("https", "a.example", "a.example:80"));
  CHECK_FALSE(sameAuthority("http", "a.example", "a.example:443"));
  CHECK_FALSE(sameAuthority("http", "a.example", ""));
}

TEST_CASE("parseRequestTarget refuses a fragment and a backslash") {
  RequestTarget t;
  CHECK_FALSE(parseRequestTarget("/a#b", false, t));
  CHECK_FALSE(parseRequestTarget("/a?q#b", false, t));
  CHECK_FALSE(parseRequestTarget("http://h/a#b", false, t));
  CHECK_FALSE(parseRequestTarget("/public\\..\\admin", false, t));
  CHECK(parseRequestTarget("/a%23b%5C", false, t));  // encoded, they are data
}

TEST_CASE("parseRequestTarget keeps the scheme of an absolute-form target") {
  RequestTarget t;
  REQUIRE(parseRequestTarget("HTTPS://h/x", false, t));
  CHECK(t.scheme == "HTTPS");
  REQUIRE(parseRequestTarget("/x", false, t));
  CHECK(t.scheme.empty());
}

// ---- writeUpstreamRequestHead -----------------------------------------------------------

const std::string kRequestWithHopByHop =
    "POST /original?x HTTP/1.1\r\n"
    "Host: client.example\r\n"
    "Connection: keep-alive, X-Hop, x-OTHER-hop\r\n"
    "Keep-Alive: timeout=5\r\n"
    "X-Hop: secret\r\n"
    "X-Other-Hop: secret2\r\n"
    "Proxy-Connection: keep-alive\r\n"
    "TE: trailers\r\n"
    "Trailer: X-T\r\n"
    "Transfer-Encoding: chunked\r\n"
    "Upgrade: websocket\r\n"
    "Expect: 100-continue\r\n"
    "X-Custom-CASE: A\r\n"
    "accept: */*\r\n"
    "x-custom-case: B\r\n"
    "\r\n"
    "0\r\n\r\n";

TEST_CASE("upstream head: request line, hop-by-hop removal, order and case kept") {
  config::Forwarding fwd;
  UpstreamRequest r = baseRequest(fwd);
  r.method = "POST";
  r.target = "/rewritten?y=2";
  std::string out = upstreamHead(kRequestWithHopByHop, r);
  CHECK(out ==
        "POST /rewritten?y=2 HTTP/1.1\r\n"
        "Host: client.example\r\n"
        "X-Custom-CASE: A\r\n"
        "accept: */*\r\n"
        "x-custom-case: B\r\n"
        "X-Forwarded-For: 192.0.2.7\r\n"
        "X-Forwarded-Proto: http\r\n"
        "X-Forwarded-Host: client.example\r\n"
        "Via: 1.1 gateway\r\n"
        "\r\n");
}

TEST_CASE("upstream head: the result is a valid HTTP/1.1 request head") {
  config::Forwarding fwd;
  UpstreamRequest r = baseRequest(fwd);
  r.method = "POST";
  r.target = "/t";
  r.chunked_body = true;
  std::string out = upstreamHead(kRequestWithHopByHop, r) + "0\r\n\r\n";
  std::vector<std::string> names;
  withHead(HTTP_REQUEST, out, [&](const MessageHead& head) {
    CHECK(head.method == HTTP_POST);
    CHECK(head.url == "/t");
    CHECK(head.chunked);
    for (size_t i = 0; i < head.header_count; ++i) names.emplace_back(head.name(i));
  });
  CHECK(names.size() == 9);
}

TEST_CASE("upstream head: chunked_body adds Transfer-Encoding: chunked once") {
  config::Forwarding fwd;
  UpstreamRequest r = baseRequest(fwd);
  r.method = "POST";
  r.chunked_body = true;
  std::string out = upstreamHead(kRequestWithHopByHop, r);
  CHECK(values(out, "Transfer-Encoding") == std::vector<std::string>{"chunked"});
  r.chunked_body = false;
  out = upstreamHead(kRequestWithHopByHop, r);
  CHECK(values(out, "Transfer-Encoding").empty());
}

TEST_CASE("upstream head: upgrade keeps Upgrade and asks with Connection: upgrade") {
  config::Forwarding fwd;
  UpstreamRequest r = baseRequest(fwd);
  r.upgrade = true;
  std::string out = upstreamHead(
      "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, X-Hop\r\nX-Hop: 1\r\n"
      "Upgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n",
      r);
  CHECK(values(out, "Upgrade") == std::vector<std::string>{"websocket"});
  CHECK(values(out, "Connection") == std::vector<std::string>{"upgrade"});
  CHECK(values(out, "X-Hop").empty());
  CHECK(values(out, "Sec-WebSocket-Key") == std::vector<std::string>{"k"});
}

TEST_CASE("upstream head: an h2c upgrade offer goes upstream as a plain request") {
  config::Forwarding fwd;
  UpstreamRequest r = baseRequest(fwd);
  std::string out;
  withHead(HTTP_REQUEST,
           "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
           "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nX-Keep: 1\r\n\r\n",
           [&](const MessageHead& head) {
             CHECK_FALSE(head.upgrade);  // the parser does not take it for an upgrade
             r.head = &head;
             r.upgrade = head.upgrade;
             writeUpstreamRequestHead(r, out);
           });
  CHECK(values(out, "Upgrade").empty());
  CHECK(values(out, "Connection").empty());
  // Connection-specific (RFC 7540 §3.2.1) even when Connection does not name it.
  CHECK(values(out, "HTTP2-Settings").empty());
  CHECK(values(out, "X-Keep") == std::vector<std::string>{"1"});
}

// A route tunnels an upgrade only when every protocol offered is one it allows: with
// another in the list, the upstream could pick that one.
TEST_CASE("upgradeOffersOnly: every offered protocol must be allowed") {
  const std::vector<std::string> websocket{"websocket"};
  const std::vector<std::string> none;
  struct Case {
    const char* upgrade_fields;
    bool websocket_only;
  };
  const Case cases[] = {
      {"Upgrade: websocket\r\n", true},
      {"Upgrade: WebSocket\r\n", true},
      {"Upgrade: websocket/13\r\n", true},             // the version is not the name
      {"Upgrade:  websocket , ,websocket\r\n", true},  // empty elements are not protocols
      {"Upgrade: websocket, foo\r\n", false},
      {"Upgrade: foo\r\n", false},
      {"Upgrade: websocketx\r\n", false},
      {"Upgrade: websocket\r\nUpgrade: foo\r\n", false},  // two fields are one list
      {"Upgrade: ,\r\n", false},                          // offers nothing
  };
  for (const Case& c : cases) {
    CAPTURE(c.upgrade_fields);
    withHead(HTTP_REQUEST,
             std::string("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n") +
                 c.upgrade_fields + "Sec-WebSocket-Key: k\r\n\r\n",
             [&](const MessageHead& head) {
               CHECK(http::upgradeOffersOnly(head, websocket) == c.websocket_only);
               CHECK_FALSE(http::upgradeOffersOnly(head, none));
             });
  }
}

// RFC 9110 §7.6.1: every field named in Connection is hop-by-hop, however many there are.
TEST_CASE("upstream head: every field named in Connection is removed") {
  std::string raw = "GET / HTTP/1.1\r\nHost: h\r\nConnection: ";
  for (int i = 0; i < 20; ++i) raw += (i ? ", " : "") + std::string("X-H") + std::to_string(i);
  raw += "\r\n";
  for (int i = 0; i < 20; ++i) raw += "X-H" + std::to_string(i) + ": v\r\n";
  raw += "\r\n";
  config::Forwarding fwd;
  std::string out = upstreamHead(raw, baseRequest(fwd));
  for (int i = 0; i < 20; ++i) {
    INFO("X-H" << i);
    CHECK(values(out, "X-H" + std::to_string(i)).empty());
  }
}

TEST_CASE("upstream head: fields named in several Connection lines are all removed") {
  config::Forwarding fwd;
  std::string out = upstreamHead(
      "GET / HTTP/1.1\r\nHost: h\r\nConnection: X-A\r\nconnection: x-b ,\t X-C\r\n"
      "X-A: 1\r\nX-B: 2\r\nX-C: 3\r\nX-D: 4\r\n\r\n",
      baseRequest(fwd));
  CHECK(values(out, "X-A").empty());
  CHECK(values(out, "X-B").empty());
  CHECK(values(out, "X-C").empty());
  CHECK(values(out, "X-D") == std::vector<std::string>{"4"});
}

// The exchange forwards a Content-Length body as is, so the upstream can only frame it if
// Content-Length reaches it. A client listing Content-Length (or Host) in Connection must
// not strip it: otherwise the body is parsed upstream as a second, unrouted request on a
// pooled connection (request smuggling).
TEST_CASE("upstream head: Connection cannot strip Content-Length or Host") {
  config::Forwarding fwd;
  UpstreamRequest r = baseRequest(fwd);
  r.method = "POST";
  std::string out = upstreamHead(
      "POST / HTTP/1.1\r\nHost: front.example\r\nConnection: Content-Length, Host\r\n"
      "Content-Length: 5\r\n\r\nhello",
      r);
  CHECK(values(out, "Content-Length") == std::vector<std::string>{"5"});
  CHECK(values(out, "Host") == std::vector<std::string>{"front.example"});
}

TEST_CASE("upstream head: an absolute-form authority replaces Host") {
  config::Forwarding fwd;
  UpstreamRequest r = baseRequest(fwd);
  r.authority = "origin.example:8080";
  SECTION("Host present: replaced in place, its name's case kept") {
    std::string out = upstreamHead(
        "GET http://origin.example:8080/ HTTP/1.1\r\nX-A: 1\r\n"
        "HOST: spoofed\r\nX-B: 2\r\n\r\n",
        r);
    std::vector<std::string> l = lines(out);
    REQUIRE(l.size() >= 4);
    CHECK(l[1] == "X-A: 1");
    CHECK(l[2] == "HOST: origin.example:8080");
    CHECK(l[3] == "X-B: 2");
    CHECK(values(out, "Host") == std::vector<std::string>{"origin.example:8080"});
    CHECK(values(out, "X-Forwarded-Host") == std::vector<std::string>{"origin.example:8080"});
  }
  SECTION("Host absent: added") {
    std::string out = upstreamHead("GET http://origin.example:8080/ HTTP/1.1\r\n\r\n", r);
    CHECK(values(out, "Host") == std::vector<std::string>{"origin.example:8080"});
  }
}

TEST_CASE("upstream head: default_host is used only when the client sent no Host") {
  config::Forwarding fwd;
  UpstreamRequest r = baseRequest(fwd);
  r.default_host = "backend.internal";
  std::string out = upstreamHead("GET / HTTP/1.0\r\nX-A: 1\r\n\r\n", r);
  CHECK(values(out, "Host") == std::vector<std::string>{"backend.internal"});
  out = upstreamHead("GET / HTTP/1.0\r\nHost: mine\r\n\r\n", r);
  CHECK(values(out, "Host") == std::vector<std::string>{"mine"});
}

TEST_CASE("upstream head: X-Forwarded-For from an untrusted peer is replaced") {
  config::Forwarding fwd;
  UpstreamRequest r = baseRequest(fwd);
  r.trusted_peer = false;
  std::string out = upstreamHead(
      "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 6.6.6.6\r\nx-forwarded-for: 7.7.7.7\r\n\r\n",
      r);
  CHECK(values(out, "X-Forwarded-For") == std::vector<std::string>{"192.0.2.7"});
}

TEST_CASE("upstream head: X-Forwarded-For from a trusted peer is extended") {
  config::Forwarding fwd;
  UpstreamRequest r = baseRequest(fwd);
  r.trusted_peer = true;
  SECTION("one field") {
    std::string out = upstreamHead(
        "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 198.51.100.1, 10.0.0.1\r\n\r\n", r);
    CHECK(values(out, "X-Forwarded-For") ==
          std::vector<std::string>{"198.51.100.1, 10.0.0.1, 192.0.2.7"});
  }
  SECTION("several fields, joined in order") {
    std::string out = upstreamHead(
        "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: a\r\nX-Other: o\r\n"
        "X-FORWARDED-FOR: b\r\n\r\n",
        r);
    CHECK(values(out, "X-Forwarded-For") == std::vector<std::string>{"a, b, 192.0.2.7"});
  }
  SECTION("none: just the client") {
    std::string out = upstreamHead("GET / HTTP/1.1\r\nHost: h\r\n\r\n", r);
    CHECK(values(out, "X-Forwarded-For") == std::vector<std::string>{"192.0.2.7"});
  }
  SECTION("many fields: none is lost") {
    std::string raw = "GET / HTTP/1.1\r\nHost: h\r\n";
    std::string expected;
    for (int i = 1; i <= 10; ++i) {
      raw += "X-Forwarded-For: 10.0.0." + std::to_string(i) + "\r\n";
      expected += "10.0.0." + std::to_string(i) + ", ";
    }
    raw += "\r\n";
    std::string out = upstreamHead(raw, r);
    CHECK(values(out, "X-Forwarded-For") == std::vector<std::string>{expected + "192.0.2.7"});
  }
}

TEST_CASE("upstream head: X-Forwarded-Proto and -Host kept from a trusted peer") {
  config::Forwarding fwd;
  UpstreamRequest r = baseRequest(fwd);
  r.proto = "http";
  const std::string raw =
      "GET / HTTP/1.1\r\nHost: inner\r\nX-Forwarded-Proto: https\r\n"
      "X-Forwarded-Host: outer.example\r\n\r\n";
  SECTION("trusted") {
    r.trusted_peer = true;
    std::string out = upstreamHead(raw, r);
    CHECK(values(out, "X-Forwarded-Proto") == std::vector<std::string>{"https"});
    CHECK(values(out, "X-Forwarded-Host") == std::vector<std::string>{"outer.example"});
  }
  SECTION("untrusted: replaced by ours") {
    r.trusted_peer = false;
    std::string out = upstreamHead(raw, r);
    CHECK(values(out, "X-Forwarded-Proto") == std::vector<std::string>{"http"});
    CHECK(values(out, "X-Forwarded-Host") == std::vector<std::string>{"inner"});
  }
  SECTION("trusted but absent: set by us") {
    r.trusted_peer = true;
    r.proto = "https";
    std::string out = upstreamHead("GET / HTTP/1.1\r\nHost: inner\r\n\r\n", r);
    CHECK(values(out, "X-Forwarded-Proto") == std::vector<std::string>{"https"});
    CHECK(values(out, "X-Forwarded-Host") == std::vector<std::string>{"inner"});
  }
}

TEST_CASE("upstream head: each forwarding flag disables its own header") {
  const std::string raw = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
  config::Forwarding fwd;
  SECTION("x_forwarded_for") {
    fwd.x_forwarded_for = false;
    std::string out = upstreamHead(raw, baseRequest(fwd));
    CHECK(values(out, "X-Forwarded-For").empty());
    CHECK(values(out, "X-Forwarded-Proto").size() == 1);
    CHECK(values(out, "X-Forwarded-Host").size() == 1);
    CHECK(values(out, "Via").size() == 1);
  }
  SECTION("x_forwarded_proto") {
    fwd.x_forwarded_proto = false;
    std::string out = upstreamHead(raw, baseRequest(fwd));
    CHECK(values(out, "X-Forwarded-For").size() == 1);
    CHECK(values(out, "X-Forwarded-Proto").empty());
    CHECK(values(out, "X-Forwarded-Host").size() == 1);
  }
  SECTION("x_forwarded_host") {
    fwd.x_forwarded_host = false;
    std::string out = upstreamHead(raw, baseRequest(fwd));
    CHECK(values(out, "X-Forwarded-Host").empty());
    CHECK(values(out, "X-Forwarded-Proto").size() == 1);
  }
  SECTION("via") {
    fwd.via = false;
    std::string out = upstreamHead(raw, baseRequest(fwd));
    CHECK(values(out, "Via").empty());
    CHECK(values(out, "X-Forwarded-For").size() == 1);
  }
  SECTION("all off: only the client's own fields") {
    fwd = config::Forwarding{false, false, false, false, {}};
    std::string out = upstreamHead(raw, baseRequest(fwd));
    CHECK(out == "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  }
}

TEST_CASE("upstream head: Via names the client's protocol version and follows its own") {
  config::Forwarding fwd;
  std::string out =
      upstreamHead("GET / HTTP/1.0\r\nHost: h\r\nVia: 1.1 edge\r\n\r\n", baseRequest(fwd));
  CHECK(values(out, "Via") == std::vector<std::string>{"1.1 edge", "1.0 gateway"});
  out = upstreamHead("GET / HTTP/1.1\r\nHost: h\r\n\r\n", baseRequest(fwd));
  CHECK(values(out, "Via") == std::vector<std::string>{"1.1 gateway"});
}

// ---- writeDownstreamResponseHead --------------------------------------------------------

const std::string kResponse =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Connection: keep-alive, X-Hop\r\n"
    "Keep-Alive: timeout=5\r\n"
    "X-Hop: 1\r\n"
    "Proxy-Connection: keep-alive\r\n"
    "Trailer: X-T\r\n"
    "Upgrade: h2c\r\n"
    "Content-Length: 5\r\n"
    "Set-Cookie: a=1\r\n"
    "set-cookie: b=2\r\n"
    "\r\n"
    "hello";

TEST_CASE("downstream head: hop-by-hop removed, the rest kept in order and case") {
  DownstreamResponse r;
  std::string out = downstreamHead(kResponse, r);
  CHECK(out ==
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Length: 5\r\n"
        "Set-Cookie: a=1\r\n"
        "set-cookie: b=2\r\n"
        "Via: 1.1 gateway\r\n"
        "\r\n");
}

TEST_CASE("downstream head: the sticky cookie is one more Set-Cookie, after the upstream's") {
  DownstreamResponse r;
  r.cookie_name = "GW_STICKY";
  r.cookie_value = "0123456789abcdef";
  r.cookie_attributes = "; Path=/; HttpOnly";
  CHECK(values(downstreamHead(kResponse, r), "Set-Cookie") ==
        std::vector<std::string>{"a=1", "b=2", "GW_STICKY=0123456789abcdef; Path=/; HttpOnly"});
}

TEST_CASE("downstream head: Transfer-Encoding from upstream is never forwarded") {
  DownstreamResponse r;
  std::string out =
      downstreamHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n0\r\n\r\n", r);
  CHECK(values(out, "Transfer-Encoding").empty());
  r.chunked_body = true;
  out =
      downstreamHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n0\r\n\r\n", r);
  CHECK(values(out, "Transfer-Encoding") == std::vector<std::string>{"chunked"});
}

// The exchange frames a response with Content-Length as is (no chunking), so dropping the
// field leaves the client with no way to find the end of the body on a kept-alive connection.
TEST_CASE("downstream head: Connection cannot strip Content-Length") {
  DownstreamResponse r;
  std::string out = downstreamHead(
      "HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello", r);
  CHECK(values(out, "Content-Length") == std::vector<std::string>{"5"});
}

TEST_CASE("downstream head: chunked_body drops Content-Length") {
  DownstreamResponse r;
  r.chunked_body = true;
  std::string out = downstreamHead(kResponse, r);
  CHECK(values(out, "Content-Length").empty());
  CHECK(values(out, "Transfer-Encoding") == std::vector<std::string>{"chunked"});
}

TEST_CASE("downstream head: Connection variants") {
  DownstreamResponse r;
  SECTION("none by default") { CHECK(values(downstreamHead(kResponse, r), "Connection").empty()); }
  SECTION("close") {
    r.close = true;
    CHECK(values(downstreamHead(kResponse, r), "Connection") == std::vector<std::string>{"close"});
  }
  SECTION("keep-alive for an HTTP/1.0 client") {
    r.keep_alive_header = true;
    CHECK(values(downstreamHead(kResponse, r), "Connection") ==
          std::vector<std::string>{"keep-alive"});
  }
  SECTION("close wins over keep-alive") {
    r.close = true;
    r.keep_alive_header = true;
    CHECK(values(downstreamHead(kResponse, r), "Connection") == std::vector<std::string>{"close"});
  }
  SECTION("upgrade keeps Upgrade") {
    r.upgrade = true;
    std::string out = downstreamHead(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: x\r\n\r\n",
        r);
    CHECK(lines(out)[0] == "HTTP/1.1 101 Switching Protocols");
    CHECK(values(out, "Connection") == std::vector<std::string>{"upgrade"});
    CHECK(values(out, "Upgrade") == std::vector<std::string>{"websocket"});
    CHECK(values(out, "Sec-WebSocket-Accept") == std::vector<std::string>{"x"});
  }
  SECTION("without upgrade, Upgrade is dropped") {
    CHECK(values(downstreamHead(kResponse, r), "Upgrade").empty());
  }
}

TEST_CASE("downstream head: status line keeps the upstream reason, or fills one in") {
  DownstreamResponse r;
  r.via = false;
  CHECK(downstreamHead("HTTP/1.1 404 Nope Nope\r\nContent-Length: 0\r\n\r\n", r) ==
        "HTTP/1.1 404 Nope Nope\r\nContent-Length: 0\r\n\r\n");
  CHECK(lines(downstreamHead("HTTP/1.1 503 \r\nContent-Length: 0\r\n\r\n", r))[0] ==
        "HTTP/1.1 503 Service Unavailable");
  // Always HTTP/1.1 towards the client; Via says what the upstream spoke.
  r.via = true;
  std::string out = downstreamHead("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", r);
  CHECK(lines(out)[0] == "HTTP/1.1 200 OK");
  CHECK(values(out, "Via") == std::vector<std::string>{"1.0 gateway"});
}

// ---- writeLocalReply --------------------------------------------------------------------

struct ParsedReply {
  int status = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool complete = false;
};

class ReplySink : public MessageSink {
 public:
  explicit ReplySink(ParsedReply& r, bool head_request) : r_(r), head_request_(head_request) {}
  int onHead(const MessageHead& head) override {
    r_.status = head.status;
    r_.reason = std::string(head.reason);
    for (size_t i = 0; i < head.header_count; ++i) {
      r_.headers.emplace_back(std::string(head.name(i)), std::string(head.value(i)));
    }
    return head_request_ ? kSkipBody : kContinue;
  }
  int onBody(const char* data, size_t length) override {
    r_.body.append(data, length);
    return kContinue;
  }
  bool onMessageComplete() override {
    r_.complete = true;
    return false;
  }

 private:
  ParsedReply& r_;
  bool head_request_;
};

ParsedReply parseReply(const std::string& raw, bool head_request) {
  ParsedReply r;
  ReplySink sink(r, head_request);
  Parser parser(HTTP_RESPONSE, &sink);
  CHECK(parser.feed(raw.data(), raw.size()) == Parser::Outcome::NeedMore);
  CHECK(parser.idle());  // nothing after the message
  return r;
}

std::string header(const ParsedReply& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (http::equalsIgnoreCase(n, name)) return v;
  }
  return "<absent>";
}

TEST_CASE("local reply: status line, JSON body, Content-Length matching the body") {
  std::string out;
  writeLocalReply(404, "no route", false, false, out);
  CHECK(out.rfind("HTTP/1.1 404 Not Found\r\n", 0) == 0);
  ParsedReply r = parseReply(out, false);
  CHECK(r.complete);
  CHECK(r.status == 404);
  CHECK(r.reason == "Not Found");
  CHECK(header(r, "Content-Type") == "application/json");
  CHECK(header(r, "Content-Length") == std::to_string(r.body.size()));
  CHECK(header(r, "Connection") == "<absent>");
  CHECK(r.body.rfind("{\"error\":\"no route\",\"status\":404}", 0) == 0);
  // At most a trailing newline after the JSON object.
  CHECK(r.body.size() <= std::string("{\"error\":\"no route\",\"status\":404}\n").size());
}

TEST_CASE("local reply: appends to what is already in the buffer") {
  std::string out = "previous";
  writeLocalReply(502, "bad gateway", false, false, out);
  CHECK(out.rfind("previousHTTP/1.1 502 Bad Gateway\r\n", 0) == 0);
}

TEST_CASE("local reply: no body for HEAD, but the same Content-Length") {
  std::string get;
  std::string head;
  writeLocalReply(503, "no healthy endpoint", false, false, get);
  writeLocalReply(503, "no healthy endpoint", false, true, head);
  ParsedReply g = parseReply(get, false);
  ParsedReply h = parseReply(head, true);
  CHECK(h.complete);
  CHECK(h.body.empty());
  CHECK(header(h, "Content-Length") == header(g, "Content-Length"));
  CHECK(head.size() < get.size());
  CHECK(head.compare(head.size() - 4, 4, "\r\n\r\n") == 0);
  CHECK(header(h, "Retry-After") == "1");
}

TEST_CASE("local reply: Connection: close when asked") {
  std::string out;
  writeLocalReply(400, "bad request", true, false, out);
  ParsedReply r = parseReply(out, false);
  CHECK(r.status == 400);
  CHECK(header(r, "Connection") == "close");
}

TEST_CASE("local reply: Connection: keep-alive for an HTTP/1.0 client that keeps it") {
  std::string out;
  LocalReplyExtras extras;
  extras.keep_alive_header = true;
  writeLocalReply(404, "no route", false, false, extras, out);
  CHECK(header(parseReply(out, false), "Connection") == "keep-alive");
  out.clear();
  writeLocalReply(404, "no route", true, false, extras, out);  // close wins
  CHECK(header(parseReply(out, false), "Connection") == "close");
}

TEST_CASE("local reply: the message is JSON-escaped") {
  std::string out;
  writeLocalReply(400, "say \"hi\" \\ now\n\x01", false, false, out);
  ParsedReply r = parseReply(out, false);
  CHECK(r.body.rfind("{\"error\":\"say \\\"hi\\\" \\\\ now\\u000a\\u0001\",\"status\":400}", 0) ==
        0);
  CHECK(header(r, "Content-Length") == std::to_string(r.body.size()));
}

TEST_CASE("reasonPhrase knows the statuses the proxy sends") {
  CHECK(reasonPhrase(200) == "OK");
  CHECK(reasonPhrase(400) == "Bad Request");
  CHECK(reasonPhrase(408) == "Request Timeout");
  CHECK(reasonPhrase(413) == "Content Too Large");
  CHECK(reasonPhrase(431) == "Request Header Fields Too Large");
  CHECK(reasonPhrase(502) == "Bad Gateway");
  CHECK(reasonPhrase(504) == "Gateway Timeout");
  CHECK(reasonPhrase(505) == "HTTP Version Not Supported");
}

}  // namespace
}  // namespace gw::proxy

TEST_CASE("httpsLocation: same host and target over HTTPS, port replaced") {
  auto location = [](std::string_view host, uint16_t port, std::string_view target) {
    std::string out;
    gw::proxy::httpsLocation(host, port, target, out);
    return out;
  };
  CHECK(location("example.com", 443, "/a?b=1") == "https://example.com/a?b=1");
  CHECK(location("example.com:8080", 443, "/") == "https://example.com/");
  CHECK(location("example.com:8080", 8443, "/x") == "https://example.com:8443/x");
  CHECK(location("[::1]:80", 8443, "/") == "https://[::1]:8443/");
  CHECK(location("[::1]", 443, "/") == "https://[::1]/");
  CHECK(location("example.com", 443, "*") == "https://example.com/");
  std::string out;
  gw::proxy::writeRedirectReply(308, "https://example.com/", true, false, out);
  CHECK(out ==
        "HTTP/1.1 308 Permanent Redirect\r\nLocation: https://example.com/\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n");
  out.clear();
  gw::proxy::writeRedirectReply(308, "https://example.com/", false, true, out);
  CHECK(out ==
        "HTTP/1.1 308 Permanent Redirect\r\nLocation: https://example.com/\r\n"
        "Content-Length: 0\r\nConnection: keep-alive\r\n\r\n");
  out.clear();
  gw::proxy::writeRedirectReply(308, "https://example.com/", false, false, out);
  CHECK(out.find("Connection") == std::string::npos);
}
