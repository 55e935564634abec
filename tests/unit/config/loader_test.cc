#define CATCH_CONFIG_MAIN
#include "gateway/config/loader.h"

#include <arpa/inet.h>
#include <re2/re2.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace gw::config;

namespace {

std::string allErrors(const LoadResult& result) {
  std::string out;
  for (const ConfigError& e : result.errors) out += e.toString() + "\n";
  return out;
}

std::shared_ptr<const Snapshot> loadOk(const std::string& text) {
  LoadResult result = loadConfigString(text, "test.toml");
  INFO(allErrors(result));
  REQUIRE(result.ok());
  REQUIRE(result.errors.empty());
  REQUIRE(result.snapshot->router != nullptr);
  return result.snapshot;
}

const gw::route::Route* matchRoute(const Snapshot& s, std::string_view method,
                                   std::string_view host, std::string_view path) {
  gw::route::RequestFacts facts;
  facts.method = method;
  facts.host = host;
  facts.path = path;
  return s.router->match(facts);
}

}  // namespace

TEST_CASE("a full config fills every field of the snapshot") {
  auto s = loadOk(R"(workers = 3
[admin]
listen = "127.0.0.1:9911"
[log]
level = "debug"
[limits]
max_header_bytes = "32KiB"
max_headers = 50
max_body = 2048
header_read_timeout = "250ms"
idle_timeout = "2m"
drain_timeout = "1h"
max_connections = 500
[forwarding]
x_forwarded_for = false
x_forwarded_proto = false
x_forwarded_host = false
via = false
trusted_proxies = ["10.0.0.0/8", "::1"]

[[listeners]]
name = "public"
listen = "0.0.0.0:8080"
limits = { max_body = "1MiB", idle_timeout = "5s" }

[[listeners]]
listen = "[::1]:8081"

[[routes]]
name = "api"
service = "api"
match = { host = "API.Example.com", path_prefix = "/v1/", methods = ["get", "POST"], headers = { X-Canary = "1", x-debug = true } }
prefix_rewrite = "/"
upgrades = ["WebSocket", "foo", "foo"]

[[routes]]
service = "api"
match = { host = "*.example.com", path_regex = "/users/[0-9]+" }

[[routes]]
name = "exact"
service = "web"
match = { path = "/healthz" }
upgrades = []

[services.api]
active = "green"
lb = "round_robin"
upstream_connect_timeout = "2s"
upstream_response_timeout = "30s"
max_idle_connections = 0
idle_connection_timeout = "90s"
[services.api.pools.blue]
endpoints = ["127.0.0.1:9001", "127.0.0.1:9003"]
[services.api.pools.green]
endpoints = ["[::1]:9002"]

[services.web.pools.main]
endpoints = ["localhost:8000"]
)");
  CHECK(s->source == "test.toml");
  CHECK(s->version == 0);
  CHECK(s->workers == 3);
  CHECK(s->admin.listen == "127.0.0.1:9911");
  REQUIRE(s->admin.address);
  CHECK(s->admin.address->toString() == "127.0.0.1:9911");
  CHECK(s->log.level == "debug");

  CHECK(s->limits.max_header_bytes == 32 * 1024);
  CHECK(s->limits.max_headers == 50);
  CHECK(s->limits.max_body == 2048);
  CHECK(s->limits.header_read_timeout_ms == 250);
  CHECK(s->limits.idle_timeout_ms == 120'000);
  CHECK(s->limits.drain_timeout_ms == 3'600'000);
  CHECK(s->limits.max_connections == 500);

  CHECK_FALSE(s->forwarding.x_forwarded_for);
  CHECK_FALSE(s->forwarding.x_forwarded_proto);
  CHECK_FALSE(s->forwarding.x_forwarded_host);
  CHECK_FALSE(s->forwarding.via);
  REQUIRE(s->forwarding.trusted_proxies.size() == 2);
  CHECK(s->forwarding.trusted_proxies[0].family == AF_INET);
  CHECK(s->forwarding.trusted_proxies[0].prefix_length == 8);
  CHECK(s->forwarding.trusted_proxies[1].family == AF_INET6);
  CHECK(s->forwarding.trusted_proxies[1].prefix_length == 128);

  REQUIRE(s->listeners.size() == 2);
  const Listener& pub = s->listeners[0];
  CHECK(pub.name == "public");
  CHECK(pub.listen == "0.0.0.0:8080");
  CHECK(pub.address.toString() == "0.0.0.0:8080");
  // The per-listener override changes only the keys it names.
  CHECK(pub.limits.max_body == 1024 * 1024);
  CHECK(pub.limits.idle_timeout_ms == 5'000);
  CHECK(pub.limits.max_headers == 50);
  CHECK(pub.limits.header_read_timeout_ms == 250);
  CHECK(pub.limits.max_connections == 500);
  const Listener& second = s->listeners[1];
  CHECK(second.name == "listener-1");
  CHECK(second.address.family() == AF_INET6);
  CHECK(second.address.port() == 8081);
  CHECK(second.limits.max_body == 2048);  // the [limits] value

  REQUIRE(s->services.size() == 2);
  const Service* api = s->findService("api");
  REQUIRE(api != nullptr);
  CHECK(api->name == "api");
  CHECK(api->active == "green");
  CHECK(api->lb == "round_robin");
  CHECK(api->upstream_connect_timeout_ms == 2'000);
  CHECK(api->upstream_response_timeout_ms == 30'000);
  CHECK(api->max_idle_connections == 0);
  CHECK(api->idle_connection_timeout_ms == 90'000);
  REQUIRE(api->pools.size() == 2);
  const Pool& blue = api->pools.at("blue");
  CHECK(blue.name == "blue");
  REQUIRE(blue.endpoints.size() == 2);
  CHECK(blue.endpoints[0].key == "127.0.0.1:9001");
  CHECK(blue.endpoints[0].host == "127.0.0.1");
  CHECK(blue.endpoints[0].port == 9001);
  REQUIRE(blue.endpoints[0].addresses.size() == 1);
  CHECK(blue.endpoints[0].addresses[0].toString() == "127.0.0.1:9001");
  CHECK(blue.endpoints[1].key == "127.0.0.1:9003");
  const Pool& green = api->activePool();
  CHECK(green.name == "green");
  REQUIRE(green.endpoints.size() == 1);
  CHECK(green.endpoints[0].key == "[::1]:9002");
  CHECK(green.endpoints[0].host == "::1");
  CHECK(green.endpoints[0].addresses[0].toString() == "[::1]:9002");

  // A hostname endpoint is resolved at load, with the port on every address.
  const Service* web = s->findService("web");
  REQUIRE(web != nullptr);
  CHECK(web->active == "main");  // the only pool
  const Endpoint& local = web->activePool().endpoints.at(0);
  CHECK(local.key == "localhost:8000");
  CHECK(local.host == "localhost");
  REQUIRE_FALSE(local.addresses.empty());
  for (const auto& a : local.addresses) {
    CHECK(a.port() == 8000);
    CHECK((a.ipString() == "127.0.0.1" || a.ipString() == "::1"));
  }
  CHECK(s->findService("nope") == nullptr);

  const auto& routes = s->router->routes();
  REQUIRE(routes.size() == 3);
  const gw::route::Route& r0 = routes[0];
  CHECK(r0.name == "api");
  CHECK(r0.service == "api");
  CHECK(r0.match.host == "api.example.com");
  CHECK(r0.match.path_kind == gw::route::PathMatch::Prefix);
  CHECK(r0.match.path == "/v1/");
  CHECK(r0.match.methods == std::vector<std::string>{"GET", "POST"});
  REQUIRE(r0.match.headers.size() == 2);
  // toml++ tables iterate in key order, not file order.
  CHECK(r0.match.headers[0].name == "x-canary");
  CHECK(r0.match.headers[0].value == std::optional<std::string>("1"));
  CHECK(r0.match.headers[1].name == "x-debug");
  CHECK_FALSE(r0.match.headers[1].value.has_value());
  CHECK(r0.prefix_rewrite == std::optional<std::string>("/"));
  CHECK(r0.upgrades == std::vector<std::string>{"websocket", "foo"});  // lower case, once each

  const gw::route::Route& r1 = routes[1];
  CHECK(r1.name == "route-1");
  CHECK(r1.match.host == "*.example.com");
  CHECK(r1.match.path_kind == gw::route::PathMatch::Regex);
  REQUIRE(r1.match.regex != nullptr);
  CHECK(r1.match.regex->pattern() == "/users/[0-9]+");
  CHECK_FALSE(r1.prefix_rewrite.has_value());
  CHECK(r1.upgrades == std::vector<std::string>{"websocket"});  // the default

  const gw::route::Route& r2 = routes[2];
  CHECK(r2.match.path_kind == gw::route::PathMatch::Exact);
  CHECK(r2.match.path == "/healthz");
  CHECK(r2.match.methods.empty());
  CHECK(r2.upgrades.empty());  // [] turns upgrades off
  CHECK(r2.match.host.empty());

  // The router built from them matches in file order.
  CHECK(matchRoute(*s, "GET", "a.example.com", "/users/42") == &routes[1]);
  CHECK(matchRoute(*s, "GET", "a.example.com", "/users/42/x") == nullptr);  // whole path
  CHECK(matchRoute(*s, "GET", "x", "/healthz") == &routes[2]);
}

TEST_CASE("a minimal config gets every default") {
  auto s = loadOk(R"(
[[listeners]]
listen = "127.0.0.1:0"
)");
  CHECK(s->workers >= 1);
  CHECK(s->workers <= 256);
  CHECK(s->admin.listen == "127.0.0.1:9901");
  REQUIRE(s->admin.address);
  CHECK(s->admin.address->toString() == "127.0.0.1:9901");
  CHECK(s->log.level == "info");
  Limits defaults;
  CHECK(s->limits.max_header_bytes == 16 * 1024);
  CHECK(s->limits.max_headers == defaults.max_headers);
  CHECK(s->limits.max_body == 10 * 1024 * 1024);
  CHECK(s->limits.header_read_timeout_ms == 10'000);
  CHECK(s->limits.idle_timeout_ms == 60'000);
  CHECK(s->limits.drain_timeout_ms == 30'000);
  CHECK(s->limits.max_connections == 10'000);
  CHECK(s->forwarding.x_forwarded_for);
  CHECK(s->forwarding.x_forwarded_proto);
  CHECK(s->forwarding.x_forwarded_host);
  CHECK(s->forwarding.via);
  CHECK(s->forwarding.trusted_proxies.empty());
  REQUIRE(s->listeners.size() == 1);
  CHECK(s->listeners[0].name == "listener-0");
  CHECK(s->listeners[0].address.port() == 0);
  CHECK(s->listeners[0].limits.max_body == defaults.max_body);
  CHECK(s->services.empty());
  // Zero routes is valid: everything is a 404.
  CHECK(s->router->routes().empty());
  CHECK(matchRoute(*s, "GET", "x", "/") == nullptr);
}

TEST_CASE("workers = \"auto\" is the core count; an explicit count is kept") {
  auto automatic = loadOk("workers = \"auto\"\n[[listeners]]\nlisten = \"127.0.0.1:0\"\n");
  auto fallback = loadOk("[[listeners]]\nlisten = \"127.0.0.1:0\"\n");
  CHECK(automatic->workers == fallback->workers);
  CHECK(loadOk("workers = 256\n[[listeners]]\nlisten = \"127.0.0.1:0\"\n")->workers == 256);
  CHECK(loadOk("workers = 1\n[[listeners]]\nlisten = \"127.0.0.1:0\"\n")->workers == 1);
}

TEST_CASE("service defaults, a route without match, and a service no route uses") {
  auto s = loadOk(R"(
[[listeners]]
listen = "127.0.0.1:0"
[[routes]]
service = "app"
[services.app.pools.main]
endpoints = ["127.0.0.1:1"]
[services.unused]
pools.only.endpoints = ["127.0.0.1:2"]
)");
  const Service& app = s->services.at("app");
  Service defaults;
  CHECK(app.active == "main");
  CHECK(app.lb == "round_robin");
  CHECK(app.upstream_connect_timeout_ms == defaults.upstream_connect_timeout_ms);
  CHECK(app.upstream_response_timeout_ms == defaults.upstream_response_timeout_ms);
  CHECK(app.max_idle_connections == 1024);
  CHECK(app.idle_connection_timeout_ms == defaults.idle_connection_timeout_ms);
  CHECK(s->services.at("unused").active == "only");
  const auto& routes = s->router->routes();
  REQUIRE(routes.size() == 1);
  CHECK(routes[0].name == "route-0");
  CHECK(routes[0].match.path_kind == gw::route::PathMatch::Any);
  CHECK(matchRoute(*s, "DELETE", "anything", "/any/path") == &routes[0]);
}

TEST_CASE("admin listen = \"\" disables the admin listener") {
  auto s = loadOk("[admin]\nlisten = \"\"\n[[listeners]]\nlisten = \"127.0.0.1:0\"\n");
  CHECK(s->admin.listen.empty());
  CHECK_FALSE(s->admin.address.has_value());
}

TEST_CASE("listeners on port 0 never conflict; different ports or IPs do not either") {
  auto s = loadOk(R"(
[[listeners]]
listen = "127.0.0.1:0"
[[listeners]]
listen = "127.0.0.1:0"
[[listeners]]
listen = "127.0.0.1:8080"
[[listeners]]
listen = "127.0.0.2:8080"
[[listeners]]
listen = "[::]:8080"
)");
  CHECK(s->listeners.size() == 5);
  CHECK(s->listeners[4].name == "listener-4");
}

TEST_CASE("loadConfigFile reads a file and names it as the source") {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = std::string(dir ? dir : "/tmp") + "/loader_test.toml";
  std::FILE* f = std::fopen(path.c_str(), "w");
  REQUIRE(f != nullptr);
  std::fputs("[[listeners]]\nlisten = \"127.0.0.1:0\"\n", f);
  std::fclose(f);
  LoadResult result = loadConfigFile(path);
  INFO(allErrors(result));
  REQUIRE(result.ok());
  CHECK(result.snapshot->source == path);
  std::remove(path.c_str());
}
