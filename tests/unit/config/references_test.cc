#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#include <string>

#include "gateway/config/loader.h"

using namespace gw::config;

namespace {

// Lines 1-2 are a listener; a test's own text starts on line 3.
const std::string kListener = "[[listeners]]\nlisten = \"127.0.0.1:0\"\n";
// A valid service "a", appended after a test's text.
const std::string kServiceA = "\n[services.a.pools.p]\nendpoints = [\"127.0.0.1:1\"]\n";

std::string allErrors(const LoadResult& result) {
  std::string out;
  for (const ConfigError& e : result.errors) out += e.toString() + "\n";
  return out;
}

ConfigError onlyError(const std::string& text) {
  LoadResult result = loadConfigString(text, "t.toml");
  INFO(allErrors(result));
  REQUIRE_FALSE(result.ok());
  REQUIRE(result.errors.size() == 1);
  return result.errors[0];
}

// A route on line 3 with the given body lines, then service "a".
ConfigError routeError(const std::string& body) {
  return onlyError(kListener + "[[routes]]\nservice = \"a\"\n" + body + "\n" + kServiceA);
}

}  // namespace

TEST_CASE("a route must name an existing service") {
  SECTION("missing service") {
    ConfigError e = onlyError(kListener + R"([[routes]]
name = "api"
service = "nope"
[services.api.pools.p]
endpoints = ["127.0.0.1:1"]
[services.web.pools.p]
endpoints = ["127.0.0.1:2"]
)");
    CHECK(e.where.line == 5);
    CHECK(e.where.column == 11);
    CHECK(e.reason == "route \"api\": service \"nope\" does not exist (services: api, web)");
  }
  SECTION("no services at all") {
    ConfigError e = onlyError(kListener + "[[routes]]\nservice = \"x\"\n");
    CHECK(e.where.line == 4);
    CHECK_THAT(e.reason, Catch::StartsWith("route \"route-0\": service \"x\" does not exist"));
  }
  SECTION("service is required") {
    ConfigError e = onlyError(kListener + "[[routes]]\nname = \"r\"\n");
    CHECK(e.toString() == "t.toml:3:1: route \"r\": \"service\" is required");
  }
  SECTION("routes must be [[routes]]") {
    ConfigError e =
        onlyError("routes = 1\n" + kListener);  // before [[listeners]], or it is a key of it
    CHECK(e.where.line == 1);
    CHECK_THAT(e.reason, Catch::StartsWith("\"routes\" must be an array of tables"));
  }
  SECTION("duplicate route names") {
    ConfigError e = onlyError(kListener +
                              "[[routes]]\nname = \"x\"\nservice = \"a\"\n"
                              "[[routes]]\nname = \"x\"\nservice = \"a\"\n" +
                              kServiceA);
    CHECK(e.toString() == "t.toml:7:8: duplicate route name \"x\" (first used on line 4)");
  }
  SECTION("a default name can clash with an explicit one") {
    ConfigError e = onlyError(kListener +
                              "[[routes]]\nname = \"route-1\"\nservice = \"a\"\n"
                              "[[routes]]\nservice = \"a\"\n" +
                              kServiceA);
    CHECK(e.where.line == 6);
    CHECK(e.reason == "duplicate route name \"route-1\" (first used on line 4)");
  }
}

TEST_CASE("route match values are checked") {
  SECTION("only one path kind") {
    ConfigError e = routeError("match = { path = \"/a\", path_prefix = \"/b\" }");
    CHECK(e.where.line == 5);
    CHECK(e.reason == "match may have only one of \"path\", \"path_prefix\", \"path_regex\"");
  }
  SECTION("path must start with /") {
    ConfigError e = routeError("match = { path_prefix = \"api/\" }");
    CHECK(e.toString() == "t.toml:5:25: \"path_prefix\" must start with \"/\" (got \"api/\")");
    CHECK(routeError("match = { path = \"x\" }").reason ==
          "\"path\" must start with \"/\" (got \"x\")");
  }
  SECTION("an invalid regex has RE2's message") {
    ConfigError e = routeError("match = { path_regex = \"/users/(\" }");
    CHECK(e.where.line == 5);
    CHECK(e.reason == "\"path_regex\" is not a valid regular expression: missing ): /users/(");
  }
  SECTION("host") {
    ConfigError e = routeError("match = { host = \"api.example.com:8080\" }");
    CHECK(e.where.line == 5);
    CHECK_THAT(e.reason, Catch::StartsWith("\"host\" must be a host name"));
    CHECK(routeError("match = { host = \"*\" }").where.line == 5);
    CHECK(routeError("match = { host = \"a.*.com\" }").where.line == 5);
    CHECK(routeError("match = { host = \"\" }").where.line == 5);
  }
  SECTION("methods") {
    ConfigError e = routeError("match = { methods = [\"GET\", \"BAD METHOD\"] }");
    CHECK(e.where.line == 5);
    CHECK(e.where.column == 29);
    CHECK(e.reason == "\"methods\": \"BAD METHOD\" is not a method name");
    CHECK(routeError("match = { methods = [] }").reason ==
          "\"methods\" must not be empty (leave it out to match every method)");
  }
  SECTION("headers") {
    ConfigError e = routeError("match = { headers = { x-debug = false } }");
    CHECK(e.where.line == 5);
    CHECK(e.reason ==
          "header \"x-debug\" must be a string (the exact value) or true (present with any value)");
    CHECK(routeError("match = { headers = { x-n = 1 } }").where.line == 5);
    CHECK(routeError("match = { headers = { \"bad name\" = \"1\" } }").reason ==
          "header name \"bad name\" is not a valid field name");
  }
  SECTION("unknown key deeper in match") {
    ConfigError e = routeError("match = { path_prefx = \"/a\" }");
    CHECK(e.reason ==
          "unknown key \"path_prefx\" in [[routes]] match (did you mean \"path_prefix\"?)");
  }
  SECTION("prefix_rewrite only with path_prefix") {
    ConfigError e = routeError("match = { path = \"/a\" }\nprefix_rewrite = \"/\"");
    CHECK(e.toString() ==
          "t.toml:6:18: route \"route-0\": \"prefix_rewrite\" needs "
          "match.path_prefix (it replaces that prefix)");
    CHECK(routeError("prefix_rewrite = \"/\"").where.line == 5);
    CHECK(routeError("match = { path_prefix = \"/a/\" }\nprefix_rewrite = \"b\"").reason ==
          "\"prefix_rewrite\" must start with \"/\" (got \"b\")");
  }
  SECTION("a bad path_prefix does not also blame prefix_rewrite") {
    ConfigError e = routeError("match = { path_prefix = \"a/\" }\nprefix_rewrite = \"/\"");
    CHECK(e.where.line == 5);
  }
}

TEST_CASE("services need pools, an existing active pool, and a known lb") {
  SECTION("active pool that does not exist") {
    ConfigError e = onlyError(kListener + R"(
[services.api]
active = "purple"
[services.api.pools.blue]
endpoints = ["127.0.0.1:1"]
[services.api.pools.green]
endpoints = ["127.0.0.1:2"]
)");
    CHECK(
        e.toString() ==
        "t.toml:5:10: service \"api\": active pool \"purple\" does not exist (pools: blue, green)");
  }
  SECTION("active is required with two pools") {
    ConfigError e = onlyError(kListener + R"(
[services.api.pools.blue]
endpoints = ["127.0.0.1:1"]
[services.api.pools.green]
endpoints = ["127.0.0.1:2"]
)");
    CHECK(e.where.line == 4);
    CHECK(e.reason ==
          "service \"api\": \"active\" is required when there is more than one pool "
          "(pools: blue, green)");
  }
  SECTION("unsupported lb") {
    ConfigError e = onlyError(kListener + "[services.a]\nlb = \"maglev\"\n" + kServiceA);
    CHECK(e.toString() ==
          "t.toml:4:6: lb \"maglev\" is not supported (supported: round_robin, "
          "weighted_round_robin, least_request, random, consistent_hash)");
  }
  SECTION("no pools") {
    ConfigError e = onlyError(kListener + "[services.a]\nlb = \"round_robin\"\n");
    CHECK(e.where.line == 3);
    CHECK_THAT(e.reason, Catch::StartsWith("service \"a\": needs at least one pool"));
  }
  SECTION("empty endpoints") {
    ConfigError e = onlyError(kListener + "[services.a.pools.p]\nendpoints = []\n");
    CHECK(e.toString() == "t.toml:4:13: service \"a\" pool \"p\": needs at least one endpoint");
  }
  SECTION("a service must be a table") {
    ConfigError e = onlyError(kListener + "[services]\na = 1\n");
    CHECK(e.where.line == 4);
    CHECK(e.reason == "service \"a\" must be a table ([services.a])");
  }
  SECTION("timeouts") {
    ConfigError e =
        onlyError(kListener + "[services.a]\nupstream_connect_timeout = 5\n" + kServiceA);
    CHECK(e.where.line == 4);
    CHECK(e.reason == "\"upstream_connect_timeout\": durations need a unit, e.g. \"5s\"");
  }
}

TEST_CASE("endpoints must be host:port and must resolve") {
  auto endpointError = [](const std::string& endpoint) {
    return onlyError(kListener + "[services.a.pools.p]\nendpoints = [\"127.0.0.1:1\", \"" +
                     endpoint + "\"]\n");
  };
  SECTION("no port") {
    ConfigError e = endpointError("127.0.0.1");
    CHECK(e.toString() ==
          "t.toml:4:29: endpoint \"127.0.0.1\" must be \"host:port\" or \"[IPv6]:port\"");
  }
  SECTION("IPv6 without brackets") {
    CHECK(endpointError("::1:80").reason ==
          "endpoint \"::1:80\" must be \"host:port\" or \"[IPv6]:port\"");
  }
  SECTION("port 0") {
    CHECK(endpointError("127.0.0.1:0").reason ==
          "endpoint \"127.0.0.1:0\": the port must not be 0");
  }
  SECTION("a name in brackets") { CHECK(endpointError("[backend]:80").where.line == 4); }
  SECTION("listed twice") {
    CHECK(endpointError("127.0.0.1:1").reason ==
          "service \"a\" pool \"p\": endpoint \"127.0.0.1:1\" is listed twice");
  }
  SECTION("a name that does not resolve") {
    ConfigError e = endpointError("nonexistent.invalid:80");
    CHECK(e.where.line == 4);
    CHECK(e.where.column == 29);
    CHECK_THAT(e.reason,
               Catch::StartsWith("endpoint \"nonexistent.invalid:80\" could not be resolved: "));
  }
}

TEST_CASE("every error is reported, in file order") {
  LoadResult result = loadConfigString(R"(workers = 0
[limits]
max_headers = "x"
idle_timeout = 5
[[listeners]]
listen = "nope"
[[routes]]
service = "missing"
match = { hoost = "a" }
[services.a.pools.p]
endpoints = []
)",
                                       "t.toml");
  INFO(allErrors(result));
  REQUIRE_FALSE(result.ok());
  REQUIRE(result.errors.size() == 7);
  int lines[] = {1, 3, 4, 6, 8, 9, 11};
  for (size_t i = 0; i < 7; ++i) CHECK(result.errors[i].where.line == lines[i]);
  CHECK_THAT(result.errors[4].reason, Catch::Contains("service \"missing\" does not exist"));
}

TEST_CASE("loadConfigFile reports an unreadable file with the path and the reason") {
  LoadResult result = loadConfigFile("/nonexistent/dir/gateway.toml");
  REQUIRE_FALSE(result.ok());
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].toString() ==
        "/nonexistent/dir/gateway.toml: cannot read the config file: No such file or directory");
}

TEST_CASE("loadConfigFile names the file in every error") {
  LoadResult result = loadConfigFile("/");
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].toString() == "/: cannot read the config file: Is a directory");
}
