#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#include <string>

#include "gateway/config/loader.h"

using namespace gw::config;

namespace {

const char kPools[] = R"(
[[listeners]]
listen = "127.0.0.1:0"
[services.app]
active = "blue"
[services.app.pools.blue]
endpoints = ["127.0.0.1:9001"]
[services.app.pools.green]
endpoints = ["127.0.0.1:9002"]
)";

LoadResult load(const std::string& extra) {
  return loadConfigString(std::string(kPools) + extra, "split.toml");
}

std::string errors(const LoadResult& r) {
  std::string out;
  for (const ConfigError& e : r.errors) out += e.toString() + "\n";
  return out;
}

}  // namespace

TEST_CASE("a split is read with its weights") {
  LoadResult r = load("[services.app.split]\nblue = 90\ngreen = 10\n");
  INFO(errors(r));
  REQUIRE(r.ok());
  const Service& s = *r.snapshot->findService("app");
  REQUIRE(s.split.size() == 2);
  CHECK(s.split[0].pool == "blue");
  CHECK(s.split[0].weight == 90);
  CHECK(s.split[1].weight == 10);
  CHECK(s.pools.at("blue").stats_slot != 0);
  CHECK(s.pools.at("blue").stats_slot != s.pools.at("green").stats_slot);
}

TEST_CASE("stats slots are stable across loads") {
  LoadResult a = load("");
  LoadResult b = load("");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a.snapshot->findService("app")->pools.at("green").stats_slot ==
        b.snapshot->findService("app")->pools.at("green").stats_slot);
}

TEST_CASE("split errors") {
  auto fails = [](const std::string& extra, const std::string& expect) {
    LoadResult r = load(extra);
    REQUIRE_FALSE(r.ok());
    INFO(errors(r));
    CHECK(errors(r).find(expect) != std::string::npos);
  };
  fails("[services.app.split]\nblue = 90\ngreen = 20\n", "must add up to 100 (they add up to 110)");
  fails("[services.app.split]\nblue = 90\nred = 10\n",
        "split names pool \"red\", which does not exist");
  fails("[services.app.split]\nblue = \"90\"\ngreen = 10\n", "must be an integer from 0 to 100");
  fails("[services.app.split]\nblue = 100\n[services.app.canary]\npool = \"green\"\n", "not both");
}

TEST_CASE("a canary is read with defaults") {
  LoadResult r = load("[services.app.canary]\npool = \"green\"\n");
  INFO(errors(r));
  REQUIRE(r.ok());
  const Canary& c = *r.snapshot->findService("app")->canary;
  CHECK(c.pool == "green");
  CHECK(c.steps == std::vector<uint32_t>{5, 25, 50, 100});
  CHECK(c.max_error_rate == Approx(0.05));
}

TEST_CASE("canary errors name the line") {
  auto fails = [](const std::string& extra, const std::string& expect) {
    LoadResult r = load(extra);
    REQUIRE_FALSE(r.ok());
    INFO(errors(r));
    CHECK(errors(r).find(expect) != std::string::npos);
  };
  fails("[services.app.canary]\npool = \"blue\"\n",
        "split.toml:11:8: service \"app\": canary pool \"blue\" is the active pool");
  fails("[services.app.canary]\npool = \"green\"\nsteps = [50, 10]\n", "increasing percentages");
  fails("[services.app.canary]\npool = \"green\"\nmax_error_rate = 2.0\n", "fraction from 0 to 1");
  fails("[services.app.canary]\npool = \"green\"\nwindow = 30\n", "durations need a unit");
  fails("[services.app.canary]\nsteps = [10]\n", "canary needs \"pool\"");
}
