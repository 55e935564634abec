#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#include <map>
#include <string>

#include "gateway/config/loader.h"

using namespace gw::config;

namespace {

std::string allErrors(const LoadResult& result) {
  std::string out;
  for (const ConfigError& e : result.errors) out += e.toString() + "\n";
  return out;
}

const char* kFile = R"(workers = 1

[admin]
listen = "127.0.0.1:9901"
token = "from-file"

[log]
level = "warn"

[limits]
drain_timeout = "10s"

[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[[routes]]
name = "all"
service = "app"

[services.app]
pools.main.endpoints = ["127.0.0.1:9001"]
)";

Overrides fromEnv(const std::map<std::string, std::string>& env) {
  return withEnvironment({}, env);
}

}  // namespace

TEST_CASE("environment variables replace the file's settings") {
  LoadResult result =
      loadConfigString(kFile, "gw.toml",
                       fromEnv({{"GATEWAY_LISTEN", "0.0.0.0:9000"},
                                {"GATEWAY_UPSTREAM", "127.0.0.1:7001, 127.0.0.1:7002"},
                                {"GATEWAY_WORKERS", "3"},
                                {"GATEWAY_ADMIN", "127.0.0.1:9911"},
                                {"GATEWAY_LOG_LEVEL", "debug"},
                                {"GATEWAY_SHUTDOWN_DELAY", "5s"},
                                {"GATEWAY_DRAIN_TIMEOUT", "20s"},
                                {"GATEWAY_ADMIN_TOKEN", "from-env"},
                                {"GATEWAY_BIN", "ignored"}}));
  INFO(allErrors(result));
  REQUIRE(result.ok());
  const Snapshot& s = *result.snapshot;
  CHECK(s.source == "gw.toml");
  CHECK(s.workers == 3);
  CHECK(s.admin.listen == "127.0.0.1:9911");
  CHECK(s.admin.token == "from-env");
  CHECK(s.log.level == "debug");
  CHECK(s.shutdown_delay_ms == 5000);
  CHECK(s.limits.drain_timeout_ms == 20000);
  REQUIRE(s.listeners.size() == 1);
  CHECK(s.listeners[0].name == "public");
  CHECK(s.listeners[0].listen == "0.0.0.0:9000");
  CHECK(s.listeners[0].limits.drain_timeout_ms == 20000);
  const Pool& pool = s.services.at("app").activePool();
  REQUIRE(pool.endpoints.size() == 2);
  CHECK(pool.endpoints[0].key == "127.0.0.1:7001");
  CHECK(pool.endpoints[1].key == "127.0.0.1:7002");
}

TEST_CASE("without overrides the file is read as written") {
  LoadResult result = loadConfigString(kFile, "gw.toml");
  REQUIRE(result.ok());
  CHECK(result.snapshot->listeners[0].listen == "127.0.0.1:8080");
  CHECK(result.snapshot->shutdown_delay_ms == 0);
  CHECK(result.snapshot->admin.token == "from-file");
}

TEST_CASE("flags win over variables; unknown GATEWAY_ variables are ignored") {
  Overrides all = withEnvironment({{"listen", "127.0.0.1:1", "--listen"}},
                                  {{"GATEWAY_LISTEN", "127.0.0.1:2"},
                                   {"GATEWAY_WORKERS", "2"},
                                   {"GATEWAY_TEST_TIMEOUT_SCALE", "3"}});
  REQUIRE(all.size() == 2);
  CHECK(all[0].origin == "--listen");
  CHECK(all[0].value == "127.0.0.1:1");
  CHECK(all[1].key == "workers");
  CHECK(all[1].origin == "GATEWAY_WORKERS");
}

TEST_CASE("errors name the variable, with no line") {
  LoadResult result = loadConfigString(kFile, "gw.toml",
                                       fromEnv({{"GATEWAY_SHUTDOWN_DELAY", "soon"},
                                                {"GATEWAY_LOG_LEVEL", "loud"},
                                                {"GATEWAY_LISTEN", "localhost"},
                                                {"GATEWAY_UPSTREAM", "no-port"}}));
  INFO(allErrors(result));
  REQUIRE_FALSE(result.ok());
  REQUIRE(result.errors.size() == 4);
  std::string text = allErrors(result);
  CHECK_THAT(text, Catch::Contains("GATEWAY_LOG_LEVEL: \"level\" must be one of"));
  CHECK_THAT(text, Catch::Contains("GATEWAY_SHUTDOWN_DELAY: "));
  CHECK_THAT(text, Catch::Contains("GATEWAY_LISTEN: "));
  CHECK_THAT(text, Catch::Contains("GATEWAY_UPSTREAM: endpoint \"no-port\""));
  for (const ConfigError& e : result.errors) CHECK(e.where.line == 0);
}

TEST_CASE("listen and upstream refuse to guess between several listeners or services") {
  std::string two = std::string(kFile) + R"(
[[listeners]]
name = "second"
listen = "127.0.0.1:8081"

[services.other]
pools.main.endpoints = ["127.0.0.1:9002"]
)";
  LoadResult result = loadConfigString(
      two, "gw.toml",
      fromEnv({{"GATEWAY_LISTEN", "127.0.0.1:1"}, {"GATEWAY_UPSTREAM", "127.0.0.1:2"}}));
  INFO(allErrors(result));
  REQUIRE(result.errors.size() == 2);
  CHECK_THAT(result.errors[0].toString(),
             Catch::StartsWith("GATEWAY_LISTEN: the config has 2 listeners"));
  CHECK_THAT(result.errors[1].toString(),
             Catch::StartsWith("GATEWAY_UPSTREAM: the config has 2 services"));
}

TEST_CASE("a file without listener or service gets them from the environment") {
  LoadResult result = loadConfigString(
      "[limits]\nidle_timeout = \"5s\"\n", "gw.toml",
      fromEnv({{"GATEWAY_LISTEN", "127.0.0.1:0"}, {"GATEWAY_UPSTREAM", "127.0.0.1:9"}}));
  INFO(allErrors(result));
  REQUIRE(result.ok());
  CHECK(result.snapshot->listeners.at(0).name == "sidecar");
  CHECK(result.snapshot->listeners.at(0).limits.idle_timeout_ms == 5000);
  CHECK(result.snapshot->services.at("upstream").activePool().endpoints.at(0).key == "127.0.0.1:9");
  CHECK(result.snapshot->router->routes().at(0).service == "upstream");
}

TEST_CASE("quick mode from variables only, admin off unless asked for") {
  LoadResult result = loadQuickConfig(
      fromEnv({{"GATEWAY_LISTEN", "127.0.0.1:0"}, {"GATEWAY_UPSTREAM", "127.0.0.1:9"}}));
  INFO(allErrors(result));
  REQUIRE(result.ok());
  CHECK(result.snapshot->source == "<flags>");
  CHECK_FALSE(result.snapshot->admin.address.has_value());
}

TEST_CASE("shutdown_delay: [limits] only, not a listener's limits") {
  LoadResult result = loadConfigString(R"([limits]
shutdown_delay = "7s"

[[listeners]]
listen = "127.0.0.1:0"
limits = { shutdown_delay = "1s" }

[[routes]]
service = "app"

[services.app]
pools.main.endpoints = ["127.0.0.1:9"]
)",
                                       "t.toml");
  INFO(allErrors(result));
  REQUIRE(result.errors.size() == 1);
  CHECK_THAT(result.errors[0].toString(),
             Catch::StartsWith("t.toml:6:") && Catch::Contains("unknown key \"shutdown_delay\""));
  LoadResult ok = loadConfigString(
      "[limits]\nshutdown_delay = \"7s\"\n[[listeners]]\nlisten = \"127.0.0.1:0\"\n"
      "[[routes]]\nservice = \"app\"\n[services.app]\npools.main.endpoints = [\"127.0.0.1:9\"]\n",
      "t.toml");
  INFO(allErrors(ok));
  REQUIRE(ok.ok());
  CHECK(ok.snapshot->shutdown_delay_ms == 7000);
}

TEST_CASE("the access log can be turned on, off and formatted from the environment") {
  LoadResult on = loadConfigString(
      kFile, "gw.toml",
      fromEnv({{"GATEWAY_ACCESS_LOG", "stdout"}, {"GATEWAY_ACCESS_LOG_FORMAT", "common"}}));
  INFO(allErrors(on));
  REQUIRE(on.ok());
  CHECK(on.snapshot->access_log.enabled);
  CHECK(on.snapshot->access_log.path == "stdout");
  CHECK(on.snapshot->access_log.format == gw::observe::AccessLogFormat::Common);

  LoadResult off = loadConfigString(std::string(kFile) + "[access_log]\npath = \"/tmp/a.log\"\n",
                                    "gw.toml", fromEnv({{"GATEWAY_ACCESS_LOG", "off"}}));
  REQUIRE(off.ok());
  CHECK_FALSE(off.snapshot->access_log.enabled);

  LoadResult bad =
      loadConfigString(kFile, "gw.toml", fromEnv({{"GATEWAY_ACCESS_LOG_FORMAT", "xml"}}));
  REQUIRE(bad.errors.size() == 1);
  CHECK_THAT(allErrors(bad),
             Catch::Contains("GATEWAY_ACCESS_LOG_FORMAT: \"format\" must be one of"));
}
