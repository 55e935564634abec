#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "gateway/config/loader.h"

using namespace gw::config;

namespace {

std::string allErrors(const LoadResult& result) {
  std::string out;
  for (const ConfigError& e : result.errors) out += e.toString() + "\n";
  return out;
}

// Quick mode from flags: what main() builds from --listen, --upstream, --workers.
struct QuickConfig {
  std::string listen;
  std::vector<std::string> upstreams;
  std::string workers;
};

LoadResult loadQuick(const QuickConfig& quick) {
  Overrides flags;
  if (!quick.listen.empty()) flags.push_back({"listen", quick.listen, "--listen"});
  std::string upstreams;
  for (const std::string& u : quick.upstreams) upstreams += (upstreams.empty() ? "" : ",") + u;
  flags.push_back({"upstream", upstreams, "--upstream"});
  if (!quick.workers.empty()) flags.push_back({"workers", quick.workers, "--workers"});
  return loadQuickConfig(flags);
}

}  // namespace

TEST_CASE("quick mode: one listener, one service, one route that takes everything") {
  QuickConfig quick;
  quick.listen = "0.0.0.0:8080";
  quick.upstreams = {"127.0.0.1:9001", "[::1]:9002", "localhost:9003"};
  quick.workers = "2";
  LoadResult result = loadQuick(quick);
  INFO(allErrors(result));
  REQUIRE(result.ok());
  const Snapshot& s = *result.snapshot;
  CHECK(s.source == "<flags>");
  CHECK(s.workers == 2);
  REQUIRE(s.listeners.size() == 1);
  CHECK(s.listeners[0].name == "sidecar");
  CHECK(s.listeners[0].listen == "0.0.0.0:8080");
  CHECK(s.listeners[0].address.port() == 8080);
  REQUIRE(s.services.size() == 1);
  const Service& upstream = s.services.at("upstream");
  CHECK(upstream.active == "main");
  REQUIRE(upstream.pools.size() == 1);
  const Pool& main = upstream.activePool();
  REQUIRE(main.endpoints.size() == 3);
  CHECK(main.endpoints[0].key == "127.0.0.1:9001");
  CHECK(main.endpoints[1].key == "[::1]:9002");
  CHECK(main.endpoints[2].key == "localhost:9003");
  const auto& routes = s.router->routes();
  REQUIRE(routes.size() == 1);
  CHECK(routes[0].name == "default");
  CHECK(routes[0].service == "upstream");
  CHECK(routes[0].match.path_kind == gw::route::PathMatch::Any);
  CHECK(routes[0].match.host.empty());
  CHECK(routes[0].match.methods.empty());
  CHECK(routes[0].match.headers.empty());
  gw::route::RequestFacts facts;
  facts.method = "PUT";
  facts.host = "whatever";
  facts.path = "/x/y";
  CHECK(s.router->match(facts) == &routes[0]);
}

TEST_CASE("quick mode: workers omitted or auto") {
  QuickConfig quick;
  quick.listen = "127.0.0.1:0";
  quick.upstreams = {"127.0.0.1:1"};
  LoadResult omitted = loadQuick(quick);
  REQUIRE(omitted.ok());
  quick.workers = "auto";
  LoadResult automatic = loadQuick(quick);
  REQUIRE(automatic.ok());
  CHECK(automatic.snapshot->workers == omitted.snapshot->workers);
}

TEST_CASE("quick mode: bad flags are reported naming the flag") {
  QuickConfig quick;
  quick.listen = "localhost:8080";
  quick.upstreams = {"no-port"};
  quick.workers = "lots";
  LoadResult result = loadQuick(quick);
  INFO(allErrors(result));
  REQUIRE_FALSE(result.ok());
  REQUIRE(result.errors.size() == 3);
  for (const ConfigError& e : result.errors) CHECK(e.where.line == 0);
  CHECK_THAT(result.errors[0].toString(),
             Catch::StartsWith("--workers: \"workers\" must be \"auto\" or an integer"));
  CHECK_THAT(result.errors[1].toString(),
             Catch::StartsWith("--listen: \"listen\" must be a numeric IP:port"));
  CHECK(result.errors[2].toString() ==
        "--upstream: endpoint \"no-port\" must be \"host:port\" or \"[IPv6]:port\"");
}

TEST_CASE("quick mode: no upstreams, a huge worker count, quotes in a flag") {
  QuickConfig quick;
  quick.listen = "127.0.0.1:\"0\\";  // quotes and a backslash must not break the TOML
  quick.workers = "99999999999999999999";
  LoadResult result = loadQuick(quick);
  INFO(allErrors(result));
  REQUIRE(result.errors.size() == 3);
  CHECK_THAT(result.errors[0].reason, Catch::StartsWith("\"workers\" must be"));
  CHECK_THAT(result.errors[1].reason, Catch::Contains("(got \"127.0.0.1:\\\"0\\\\\")"));
  CHECK(result.errors[2].reason ==
        "service \"upstream\" pool \"main\": needs at least one endpoint");
}
