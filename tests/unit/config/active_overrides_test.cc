#define CATCH_CONFIG_MAIN
#include "gateway/config/active_overrides.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <string>

#include "gateway/config/loader.h"

namespace gw::config {
namespace {

std::shared_ptr<const Snapshot> load(const std::string& active) {
  LoadResult r = loadConfigString(
      "[[listeners]]\nlisten = \"127.0.0.1:0\"\n"
      "[[routes]]\nservice = \"app\"\n"
      "[services.app]\nactive = \"" +
          active +
          "\"\n"
          "[services.app.pools.blue]\nendpoints = [\"127.0.0.1:9001\"]\n"
          "[services.app.pools.green]\nendpoints = [\"127.0.0.1:9002\"]\n",
      "test.toml");
  REQUIRE(r.ok());
  return r.snapshot;
}

std::string tempPath() {
  char dir[] = "/tmp/overrides-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  return std::string(dir) + "/gateway.toml.state";
}

TEST_CASE("no overrides: the file's snapshot is used as is") {
  ActiveOverrides o;
  std::vector<std::string> dropped;
  auto file = load("blue");
  CHECK(o.apply(file, dropped) == file);
  CHECK(dropped.empty());
}

TEST_CASE("an override holds while the file still names the same pool") {
  ActiveOverrides o;
  o.set("app", "green", "blue");
  std::vector<std::string> dropped;
  auto applied = o.apply(load("blue"), dropped);
  CHECK(applied->findService("app")->active == "green");
  CHECK(dropped.empty());
  CHECK(o.all().size() == 1);
}

TEST_CASE("a changed file wins and drops the override") {
  ActiveOverrides o;
  o.set("app", "blue", "green");  // flipped to blue while the file said green
  std::vector<std::string> dropped;
  auto applied = o.apply(load("blue"), dropped);  // the file now says blue itself
  CHECK(applied->findService("app")->active == "blue");
  CHECK(dropped == std::vector<std::string>{"app"});
  CHECK(o.all().empty());
}

TEST_CASE("overrides for a missing service or pool are dropped") {
  ActiveOverrides o;
  o.set("gone", "green", "blue");
  o.set("app", "purple", "blue");
  std::vector<std::string> dropped;
  o.apply(load("blue"), dropped);
  CHECK(dropped.size() == 2);
  CHECK(o.all().empty());
}

TEST_CASE("flipping back to the file's pool clears the override") {
  ActiveOverrides o;
  o.set("app", "green", "blue");
  o.set("app", "blue", "blue");
  CHECK(o.all().empty());
}

TEST_CASE("the state file round-trips, and an empty set removes it") {
  std::string path = tempPath();
  ActiveOverrides o;
  o.set("app", "green", "blue");
  o.set("web \"x\"", "b", "a");
  REQUIRE(o.save(path).empty());
  ActiveOverrides back;
  REQUIRE(back.load(path).empty());
  REQUIRE(back.all().size() == 2);
  CHECK(back.all().at("app").active == "green");
  CHECK(back.all().at("app").file_active == "blue");
  CHECK(back.all().at("web \"x\"").active == "b");

  ActiveOverrides none;
  REQUIRE(none.save(path).empty());
  CHECK(std::ifstream(path).good() == false);
  CHECK(ActiveOverrides().load(path).empty());  // a missing file is no error
}

TEST_CASE("a corrupt state file is reported with its path and line") {
  std::string path = tempPath();
  std::ofstream(path) << "[services.app\nactive = 1\n";
  ActiveOverrides o;
  std::string error = o.load(path);
  CHECK(error.rfind(path + ":1:", 0) == 0);
  CHECK(o.all().empty());
}

TEST_CASE("quick mode has no state file") {
  CHECK(ActiveOverrides::pathFor("<flags>").empty());
  CHECK(ActiveOverrides::pathFor("/etc/gw.toml") == "/etc/gw.toml.state");
}

}  // namespace
}  // namespace gw::config
