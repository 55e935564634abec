#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#include <string>

#include "gateway/config/loader.h"

using namespace gw::config;

namespace {

// Bazel runs tests in the workspace's runfiles tree, so repo paths work as is.
std::shared_ptr<const Snapshot> loadShipped(const std::string& path) {
  LoadResult result = loadConfigFile(path);
  std::string errors;
  for (const ConfigError& e : result.errors) errors += e.toString() + "\n";
  INFO(errors);
  REQUIRE(result.ok());
  REQUIRE(result.errors.empty());
  return result.snapshot;
}

}  // namespace

TEST_CASE("conf/gateway.toml: the demo") {
  auto s = loadShipped("conf/gateway.toml");
  CHECK(s->source == "conf/gateway.toml");
  REQUIRE(s->admin.address);
  CHECK(s->admin.address->toString() == "127.0.0.1:9901");
  REQUIRE(s->listeners.size() == 1);
  CHECK(s->listeners[0].name == "public");
  CHECK(s->listeners[0].address.toString() == "0.0.0.0:8080");
  const Service& demo = s->services.at("demo");
  CHECK(demo.active == "blue");
  CHECK(demo.pools.at("blue").endpoints.at(0).key == "127.0.0.1:9001");
  CHECK(demo.pools.at("green").endpoints.at(0).key == "127.0.0.1:9002");
  const Service& preview = s->services.at("green-preview");
  CHECK(preview.active == "green");
  CHECK(preview.pools.size() == 1);
  const auto& routes = s->router->routes();
  REQUIRE(routes.size() == 2);
  CHECK(routes[0].name == "green-preview");
  CHECK(routes[0].service == "green-preview");
  CHECK(routes[0].match.path_kind == gw::route::PathMatch::Prefix);
  CHECK(routes[0].match.path == "/preview/");
  CHECK(routes[0].prefix_rewrite == std::optional<std::string>("/"));
  CHECK(routes[1].name == "default");
  CHECK(routes[1].service == "demo");
  CHECK(routes[1].match.path_kind == gw::route::PathMatch::Any);
}

TEST_CASE("conf/examples/sidecar.toml") {
  auto s = loadShipped("conf/examples/sidecar.toml");
  REQUIRE(s->listeners.size() == 1);
  CHECK(s->listeners[0].address.toString() == "0.0.0.0:8080");
  CHECK(s->admin.listen == "127.0.0.1:9901");
  REQUIRE(s->router->routes().size() == 1);
  const Service* app = s->findService(s->router->routes()[0].service);
  REQUIRE(app != nullptr);
  REQUIRE(app->activePool().endpoints.size() == 1);
  CHECK(app->activePool().endpoints[0].key == "127.0.0.1:9001");
}

TEST_CASE("conf/examples/blue-green.toml") {
  auto s = loadShipped("conf/examples/blue-green.toml");
  REQUIRE(s->listeners.size() == 1);
  CHECK(s->listeners[0].address.toString() == "127.0.0.1:8080");
  REQUIRE(s->router->routes().size() == 1);
  const Service* app = s->findService(s->router->routes()[0].service);
  REQUIRE(app != nullptr);
  CHECK(app->active == "blue");
  CHECK(app->pools.at("blue").endpoints.at(0).key == "127.0.0.1:9001");
  CHECK(app->pools.at("green").endpoints.at(0).key == "127.0.0.1:9002");
}

TEST_CASE("conf/examples/canary.toml") {
  auto s = loadShipped("conf/examples/canary.toml");
  const Service* app = s->findService("app");
  REQUIRE(app != nullptr);
  REQUIRE(app->canary.has_value());
  CHECK(app->canary->pool == "green");
  CHECK(app->canary->steps == std::vector<uint32_t>{5, 25, 50, 100});
  CHECK(app->canary->step_interval_ms == 60'000);
}

TEST_CASE("conf/examples/load-balancing.toml") {
  auto s = loadShipped("conf/examples/load-balancing.toml");
  const Service& shop = s->services.at("shop");
  CHECK(shop.lb == "least_request");
  CHECK(shop.balancing.health_check.enabled);
  CHECK(shop.balancing.retry.attempts == 2);
  const Sticky& sticky = shop.balancing.sticky;
  CHECK(sticky.enabled);
  CHECK(sticky.cookie == "GW_STICKY");
  CHECK(sticky.ttl_ms == 3'600'000);
  CHECK(sticky.secure);
  CHECK(sticky.same_site == "Lax");
  CHECK(shop.activePool().endpoints.at(2).weight == 2);
}
