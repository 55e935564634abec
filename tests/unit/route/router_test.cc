#define CATCH_CONFIG_MAIN
#include <re2/re2.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "gateway/route/route.h"

// Counts global allocations so a test can check that match() never allocates. Not under
// AddressSanitizer: it owns operator new there, and memory from its allocator must not
// reach our free() (alloc-dealloc-mismatch). The allocation check runs in the normal build.
namespace {
std::atomic<long> g_allocations{0};
}  // namespace

#ifndef __SANITIZE_ADDRESS__
constexpr bool kCountingAllocations = true;
[[gnu::noinline]] void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
// noinline: once inlined, GCC sees `new` paired with free() and warns (-Wmismatched-new-delete).
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#else
constexpr bool kCountingAllocations = false;
#endif

namespace gw::route {
namespace {

using http::HeaderView;

Route makeRoute(std::string name) {
  Route r;
  r.name = std::move(name);
  r.service = "svc";
  return r;
}

Route hostRoute(std::string host) {
  Route r = makeRoute("host");
  r.match.host = std::move(host);
  return r;
}

Route pathRoute(PathMatch kind, std::string path) {
  Route r = makeRoute("path");
  r.match.path_kind = kind;
  r.match.path = std::move(path);
  return r;
}

Route regexRoute(const std::string& pattern) {
  Route r = makeRoute("regex");
  r.match.path_kind = PathMatch::Regex;
  r.match.regex = std::make_shared<const re2::RE2>(pattern);
  REQUIRE(r.match.regex->ok());
  return r;
}

struct Req {
  std::string method = "GET";
  std::string host = "example.com";
  std::string path = "/";
  std::vector<HeaderView> headers;

  RequestFacts facts() const {
    return RequestFacts{method, host, path, headers.data(), headers.size()};
  }
};

// True when a router holding only `route` matches the request.
bool matches(Route route, const Req& req) {
  std::vector<Route> routes;
  routes.push_back(std::move(route));
  Router router(std::move(routes));
  return router.match(req.facts()) == &router.routes()[0];
}

bool hostMatches(const std::string& pattern, const std::string& host) {
  Req req;
  req.host = host;
  return matches(hostRoute(pattern), req);
}

bool pathMatches(const Route& route, const std::string& path) {
  Req req;
  req.path = path;
  return matches(route, req);
}

TEST_CASE("empty route host matches any host, including none") {
  CHECK(hostMatches("", "example.com"));
  CHECK(hostMatches("", "anything.else:8080"));
  CHECK(hostMatches("", ""));
}

TEST_CASE("exact host is case-insensitive and ignores the port") {
  CHECK(hostMatches("api.example.com", "api.example.com"));
  CHECK(hostMatches("api.example.com", "API.Example.COM"));
  CHECK(hostMatches("API.example.com", "api.example.com"));
  CHECK(hostMatches("api.example.com", "api.example.com:8080"));
  CHECK_FALSE(hostMatches("api.example.com", "example.com"));
  CHECK_FALSE(hostMatches("api.example.com", "api.example.co"));
  CHECK_FALSE(hostMatches("api.example.com", "xapi.example.com"));
  CHECK_FALSE(hostMatches("api.example.com", "api.example.com.evil"));
  CHECK_FALSE(hostMatches("api.example.com", ""));
}

TEST_CASE("IPv6 literal hosts keep their brackets and lose only the port") {
  CHECK(hostMatches("[::1]", "[::1]"));
  CHECK(hostMatches("[::1]", "[::1]:8080"));
  CHECK(hostMatches("[fe80::a]", "[FE80::A]:443"));
  CHECK_FALSE(hostMatches("[::1]", "[::2]:8080"));
  CHECK_FALSE(hostMatches("::1", "[::1]:8080"));
  // A bare IPv6 address (several colons, no brackets) is not cut at a colon.
  CHECK(hostMatches("::1", "::1"));
  CHECK_FALSE(hostMatches(":", "::1"));
  CHECK(hostMatches("127.0.0.1", "127.0.0.1:18080"));
}

TEST_CASE("wildcard host matches subdomains at any depth but not the apex") {
  CHECK(hostMatches("*.example.com", "a.example.com"));
  CHECK(hostMatches("*.example.com", "a.b.example.com"));
  CHECK(hostMatches("*.example.com", "A.EXAMPLE.com:8443"));
  CHECK_FALSE(hostMatches("*.example.com", "example.com"));
  CHECK_FALSE(hostMatches("*.example.com", "example.com:80"));
  CHECK_FALSE(hostMatches("*.example.com", ".example.com"));
  CHECK_FALSE(hostMatches("*.example.com", "aexample.com"));
  CHECK_FALSE(hostMatches("*.example.com", "a.example.org"));
  CHECK_FALSE(hostMatches("*.example.com", "a.example.com.org"));
}

TEST_CASE("path Any matches every path") {
  Route r = makeRoute("any");
  CHECK(pathMatches(r, "/"));
  CHECK(pathMatches(r, "/whatever/deep"));
  // Any really is the default: a route with nothing set matches a random request.
  Req req;
  req.method = "DELETE";
  req.host = "x.y";
  req.path = "/z";
  CHECK(matches(r, req));
}

TEST_CASE("path Exact compares the whole path, case-sensitively") {
  Route r = pathRoute(PathMatch::Exact, "/health");
  CHECK(pathMatches(r, "/health"));
  CHECK_FALSE(pathMatches(r, "/health/"));
  CHECK_FALSE(pathMatches(r, "/healthz"));
  CHECK_FALSE(pathMatches(r, "/Health"));
  CHECK_FALSE(pathMatches(r, "/heal"));
  CHECK_FALSE(pathMatches(r, ""));
}

TEST_CASE("path Prefix is a case-sensitive starts-with") {
  Route r = pathRoute(PathMatch::Prefix, "/api/");
  CHECK(pathMatches(r, "/api/"));
  CHECK(pathMatches(r, "/api/v1/users"));
  CHECK_FALSE(pathMatches(r, "/api"));
  CHECK_FALSE(pathMatches(r, "/API/v1"));
  CHECK_FALSE(pathMatches(r, "/apix"));
  CHECK_FALSE(pathMatches(r, "/other/api/"));

  Route no_slash = pathRoute(PathMatch::Prefix, "/api");
  CHECK(pathMatches(no_slash, "/api"));
  CHECK(pathMatches(no_slash, "/apix"));  // literal prefix, no segment semantics
  CHECK_FALSE(pathMatches(no_slash, "/ap"));
}

TEST_CASE("path Regex must match the whole path") {
  Route r = regexRoute(R"(/users/[0-9]+)");
  CHECK(pathMatches(r, "/users/42"));
  CHECK_FALSE(pathMatches(r, "/users/42/posts"));  // not a partial match
  CHECK_FALSE(pathMatches(r, "/v1/users/42"));
  CHECK_FALSE(pathMatches(r, "/users/abc"));

  Route missing = makeRoute("broken");
  missing.match.path_kind = PathMatch::Regex;  // no regex compiled: never matches
  CHECK_FALSE(pathMatches(missing, "/anything"));
}

TEST_CASE("methods: empty means any, otherwise one of the listed names exactly") {
  Req req;
  req.method = "PATCH";
  CHECK(matches(makeRoute("any"), req));

  Route r = makeRoute("rw");
  r.match.methods = {"GET", "POST"};
  req.method = "GET";
  CHECK(matches(r, req));
  req.method = "POST";
  CHECK(matches(r, req));
  req.method = "PUT";
  CHECK_FALSE(matches(r, req));
  req.method = "get";
  CHECK_FALSE(matches(r, req));
  req.method = "GETX";
  CHECK_FALSE(matches(r, req));
}

TEST_CASE("headers: presence, exact value, case-insensitive name, any occurrence") {
  Route r = makeRoute("hdr");
  r.match.headers = {{"X-Canary", std::nullopt}, {"X-Env", std::string("blue")}};

  Req req;
  SECTION("all present and matching") {
    req.headers = {{"x-canary", "whatever"}, {"X-ENV", "blue"}};
    CHECK(matches(r, req));
  }
  SECTION("presence with an empty value is still presence") {
    req.headers = {{"X-Canary", ""}, {"X-Env", "blue"}};
    CHECK(matches(r, req));
  }
  SECTION("one missing header fails the route") {
    req.headers = {{"X-Env", "blue"}};
    CHECK_FALSE(matches(r, req));
  }
  SECTION("no headers at all") { CHECK_FALSE(matches(r, req)); }
  SECTION("value is exact and case-sensitive") {
    req.headers = {{"X-Canary", "1"}, {"X-Env", "Blue"}};
    CHECK_FALSE(matches(r, req));
    req.headers = {{"X-Canary", "1"}, {"X-Env", "blue2"}};
    CHECK_FALSE(matches(r, req));
  }
  SECTION("a later occurrence with the right value is enough") {
    req.headers = {{"X-Env", "green"}, {"X-Canary", "1"}, {"x-env", "blue"}};
    CHECK(matches(r, req));
  }
  SECTION("repeated occurrences, none matching") {
    req.headers = {{"X-Env", "green"}, {"X-Canary", "1"}, {"x-env", "red"}};
    CHECK_FALSE(matches(r, req));
  }
  SECTION("a header value does not satisfy a name") {
    req.headers = {{"X-Other", "X-Canary"}, {"X-Env", "blue"}};
    CHECK_FALSE(matches(r, req));
  }
}

TEST_CASE("every condition must hold together") {
  Route r = makeRoute("all");
  r.match.host = "*.example.com";
  r.match.path_kind = PathMatch::Prefix;
  r.match.path = "/api/";
  r.match.methods = {"POST"};
  r.match.headers = {{"X-Env", std::string("blue")}};

  Req ok;
  ok.method = "POST";
  ok.host = "a.example.com";
  ok.path = "/api/x";
  ok.headers = {{"x-env", "blue"}};
  CHECK(matches(r, ok));

  Req bad_host = ok;
  bad_host.host = "example.com";
  CHECK_FALSE(matches(r, bad_host));
  Req bad_path = ok;
  bad_path.path = "/web/x";
  CHECK_FALSE(matches(r, bad_path));
  Req bad_method = ok;
  bad_method.method = "GET";
  CHECK_FALSE(matches(r, bad_method));
  Req bad_header = ok;
  bad_header.headers = {{"x-env", "green"}};
  CHECK_FALSE(matches(r, bad_header));
}

TEST_CASE("first matching route wins; no match gives nullptr") {
  std::vector<Route> routes;
  routes.push_back(pathRoute(PathMatch::Exact, "/api/health"));
  routes.back().name = "health";
  routes.push_back(pathRoute(PathMatch::Prefix, "/api/"));
  routes.back().name = "api";
  routes.push_back(pathRoute(PathMatch::Prefix, "/api/v2/"));  // shadowed by "api"
  routes.back().name = "shadowed";
  routes.push_back(hostRoute("static.example.com"));
  routes.back().name = "static";
  Router router(std::move(routes));

  Req req;
  req.path = "/api/health";
  const Route* hit = router.match(req.facts());
  REQUIRE(hit != nullptr);
  CHECK(hit->name == "health");
  CHECK(hit == &router.routes()[0]);

  req.path = "/api/v2/x";
  hit = router.match(req.facts());
  REQUIRE(hit != nullptr);
  CHECK(hit->name == "api");

  req.path = "/img.png";
  req.host = "static.example.com";
  hit = router.match(req.facts());
  REQUIRE(hit != nullptr);
  CHECK(hit->name == "static");

  req.host = "example.com";
  CHECK(router.match(req.facts()) == nullptr);
}

TEST_CASE("an empty route table matches nothing") {
  Router router({});
  Req req;
  CHECK(router.match(req.facts()) == nullptr);
  CHECK(router.routes().empty());
}

TEST_CASE("match() does not allocate") {
  if (!kCountingAllocations) {
    WARN("allocation counting is off under AddressSanitizer; the normal build checks this");
    return;
  }
  std::vector<Route> routes;
  routes.push_back(hostRoute("*.example.com"));
  routes.back().match.methods = {"POST"};
  routes.push_back(regexRoute(R"(/users/[0-9]+)"));
  routes.back().match.headers = {{"x-env", std::string("blue")}};
  routes.push_back(pathRoute(PathMatch::Prefix, "/static/"));
  Router router(std::move(routes));

  Req req;
  req.host = "a.example.com:8080";
  req.path = "/users/7";
  req.headers = {{"Accept", "*/*"}, {"X-Env", "blue"}};
  RequestFacts facts = req.facts();
  // RE2 builds its DFA lazily: let the first call fill the cache.
  REQUIRE(router.match(facts) == &router.routes()[1]);

  long before = g_allocations.load();
  const Route* hit = nullptr;
  for (int i = 0; i < 100; ++i) hit = router.match(facts);
  long after = g_allocations.load();
  CHECK(hit == &router.routes()[1]);
  CHECK(after - before == 0);

  // The counter itself works (so the check above can fail).
  long base = g_allocations.load();
  std::string* s = new std::string("x");
  CHECK(g_allocations.load() > base);
  delete s;
}

Route rewriteRoute(std::string prefix, std::optional<std::string> rewrite) {
  Route r = pathRoute(PathMatch::Prefix, std::move(prefix));
  r.prefix_rewrite = std::move(rewrite);
  return r;
}

TEST_CASE("rewritePath replaces the matched prefix literally, keeping the query") {
  std::string storage;
  CHECK(Router::rewritePath(rewriteRoute("/api/", "/"), "/api/x?q=1", storage) == "/x?q=1");
  CHECK(Router::rewritePath(rewriteRoute("/api", "/v2"), "/api/x", storage) == "/v2/x");
  CHECK(Router::rewritePath(rewriteRoute("/api/", "/v2/"), "/api/a/b?x=1&y=2", storage) ==
        "/v2/a/b?x=1&y=2");
  CHECK(Router::rewritePath(rewriteRoute("/api", "/v2"), "/api", storage) == "/v2");
  CHECK(Router::rewritePath(rewriteRoute("/api", "/v2"), "/api?q", storage) == "/v2?q");
  // Literal: rewrite "/" on a remainder that starts with "/" keeps both slashes.
  CHECK(Router::rewritePath(rewriteRoute("/api", "/"), "/api/x", storage) == "//x");
}

TEST_CASE("rewritePath never returns an empty path") {
  std::string storage;
  CHECK(Router::rewritePath(rewriteRoute("/api", ""), "/api", storage) == "/");
  CHECK(Router::rewritePath(rewriteRoute("/api/", ""), "/api/", storage) == "/");
  CHECK(Router::rewritePath(rewriteRoute("/api", ""), "/api?q=1", storage) == "/?q=1");
  CHECK(Router::rewritePath(rewriteRoute("/api", ""), "/api/x", storage) == "/x");
}

TEST_CASE("rewritePath without a rewrite returns the input itself") {
  std::string storage = "untouched";
  std::string input = "/api/x?q=1";

  std::string_view out = Router::rewritePath(rewriteRoute("/api/", std::nullopt), input, storage);
  CHECK(out == input);
  CHECK(out.data() == input.data());  // the same bytes, not a copy
  CHECK(storage == "untouched");

  // A rewrite on a non-prefix route is ignored too.
  Route exact = pathRoute(PathMatch::Exact, "/api/x");
  exact.prefix_rewrite = "/y";
  out = Router::rewritePath(exact, input, storage);
  CHECK(out.data() == input.data());

  // A path that does not carry the prefix is passed through unchanged.
  out = Router::rewritePath(rewriteRoute("/api/", "/"), "/other", storage);
  CHECK(out == "/other");
}

TEST_CASE("rewritePath result lives in storage") {
  std::string storage;
  std::string_view out = Router::rewritePath(rewriteRoute("/api/", "/v1/"), "/api/x", storage);
  CHECK(out == "/v1/x");
  CHECK(out.data() == storage.data());
}

}  // namespace
}  // namespace gw::route
