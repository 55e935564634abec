#define CATCH_CONFIG_MAIN
#include "gateway/config/describe.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "gateway/config/loader.h"

using namespace gw::config;

namespace {

std::string allErrors(const LoadResult& result) {
  std::string out;
  for (const ConfigError& e : result.errors) out += e.toString() + "\n";
  return out;
}

std::shared_ptr<const Snapshot> load(const std::string& text) {
  LoadResult result = loadConfigString(text, "test.toml");
  INFO(allErrors(result));
  REQUIRE(result.ok());
  return result.snapshot;
}

const char kBase[] = R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[[listeners]]
name = "internal"
listen = "127.0.0.1:8081"

[[routes]]
name = "api"
match = { path_prefix = "/api" }
service = "app"

[services.app]
active = "blue"
[services.app.pools.blue]
endpoints = ["127.0.0.1:9001"]
[services.app.pools.green]
endpoints = ["127.0.0.1:9002"]
)";

bool has(const ConfigDiff& d, const std::string& kind, const std::string& name,
         const std::string& change) {
  for (const ConfigChange& c : d.changes) {
    if (c.kind == kind && c.name == name && c.change == change) return true;
  }
  return false;
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

// A scratch directory with files, removed at the end.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/gw-describe-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() {
    if (std::system(("rm -rf " + path).c_str()) != 0)
      std::fprintf(stderr, "cannot remove %s\n", path.c_str());
  }
  std::string write(const std::string& name, const std::string& text) const {
    std::string full = path + "/" + name;
    std::FILE* f = std::fopen(full.c_str(), "w");
    std::fputs(text.c_str(), f);
    std::fclose(f);
    return full;
  }
};

}  // namespace

TEST_CASE("no change, no diff") {
  auto a = load(kBase);
  auto b = load(kBase);
  ConfigDiff d = diffSnapshots(*a, *b);
  CHECK(d.changes.empty());
  CHECK(diffToText(d).find("no changes") != std::string::npos);
}

TEST_CASE("a flip, a moved listener, a new route and a changed pool") {
  auto a = load(kBase);
  std::string text = replaced(kBase, "active = \"blue\"", "active = \"green\"");
  text = replaced(text, "127.0.0.1:8081", "127.0.0.1:8082");
  text = replaced(text, "endpoints = [\"127.0.0.1:9002\"]",
                  "endpoints = [\"127.0.0.1:9002\", \"127.0.0.1:9003\"]");
  text += "\n[[routes]]\nname = \"web\"\nservice = \"app\"\n";
  auto b = load(text);
  ConfigDiff d = diffSnapshots(*a, *b);
  CHECK(has(d, "service", "app", "changed"));
  CHECK(has(d, "listener", "internal", "changed"));
  CHECK(has(d, "route", "web", "added"));
  CHECK(has(d, "pool", "app/green", "changed"));
  CHECK_FALSE(has(d, "listener", "public", "changed"));
  REQUIRE(d.drained_listeners == std::vector<std::string>{"internal"});
  REQUIRE(d.switched_services == std::vector<std::string>{"app"});
  std::string out = diffToText(d);
  CHECK(out.find("~ service app: active: blue -> green") != std::string::npos);
  CHECK(out.find("listen: '127.0.0.1:8081' -> '127.0.0.1:8082'") != std::string::npos);
}

TEST_CASE("removed listener and service") {
  std::string two =
      std::string(kBase) + "\n[services.other.pools.main]\nendpoints = [\"127.0.0.1:9005\"]\n";
  auto a = load(two);
  std::string text =
      replaced(kBase, "[[listeners]]\nname = \"internal\"\nlisten = \"127.0.0.1:8081\"\n", "");
  auto b = load(text);
  ConfigDiff d = diffSnapshots(*a, *b);
  CHECK(has(d, "listener", "internal", "removed"));
  CHECK(has(d, "service", "other", "removed"));
  CHECK(d.drained_listeners == std::vector<std::string>{"internal"});
}

TEST_CASE("the effective config shows the served active pool") {
  auto a = load(kBase);
  auto flipped = std::make_shared<Snapshot>(*a);
  flipped->services["app"].active = "green";
  std::string json = effectiveConfigJson(*flipped);
  CHECK(json.find("\"active\" : \"green\"") != std::string::npos);
  CHECK(json.find("\"listen\" : \"127.0.0.1:8080\"") != std::string::npos);
}

TEST_CASE("the effective config hides the sticky secret") {
  auto a = load(replaced(kBase, "active = \"blue\"",
                         "active = \"blue\"\nsticky = { secret = \"do-not-show-this-secret\" }"));
  std::string json = effectiveConfigJson(*a);
  CHECK(json.find("do-not-show-this-secret") == std::string::npos);
  CHECK(json.find("\"secret\" : \"(redacted)\"") != std::string::npos);
  CHECK(a->services.at("app").balancing.sticky.secret == "do-not-show-this-secret");
}

TEST_CASE("include merges routes, listeners and services from other files") {
  TempDir dir;
  dir.write("extra-a.toml", "[[routes]]\nname = \"b\"\nservice = \"app\"\n");
  dir.write("extra-b.toml",
            "[services.more.pools.p]\nendpoints = [\"127.0.0.1:9010\"]\n"
            "[[listeners]]\nname = \"second\"\nlisten = \"127.0.0.1:0\"\n");
  std::string main = dir.write(
      "main.toml", "include = [\"extra-*.toml\", \"none/*.toml\"]\n" + std::string(kBase));
  LoadResult r = loadConfigFile(main);
  INFO(allErrors(r));
  REQUIRE(r.ok());
  const Snapshot& s = *r.snapshot;
  CHECK(s.files.size() == 3);
  CHECK(s.listeners.size() == 3);
  CHECK(s.listeners.back().name == "second");
  CHECK(s.services.count("more") == 1);
  REQUIRE(s.router->routes().size() == 2);
  CHECK(s.router->routes()[1].name == "b");  // after the main file's routes
  CHECK(s.hash.size() == 16);
  CHECK_FALSE(readConfigFingerprint(main).empty());
}

TEST_CASE("include errors name the included file") {
  TempDir dir;
  dir.write("dup.toml", "[services.app.pools.x]\nendpoints = [\"127.0.0.1:1\"]\n");
  dir.write("bad.toml", "[[routes]]\nname = \"r\"\nservice = 7\n");
  dir.write("syntax.toml", "[[routes]\nname = \"r\"\n");
  dir.write("nested.toml", "include = [\"x.toml\"]\n");
  auto check = [&](const std::string& file, const std::string& expect) {
    std::string main =
        dir.write("main.toml", "include = [\"" + file + "\"]\n" + std::string(kBase));
    LoadResult r = loadConfigFile(main);
    REQUIRE_FALSE(r.ok());
    std::string errors = allErrors(r);
    INFO(errors);
    CHECK(errors.find(expect) != std::string::npos);
  };
  check("dup.toml", dir.path + "/dup.toml:1:1: service \"app\" is already defined at " + dir.path +
                        "/main.toml:");
  check("bad.toml", dir.path + "/bad.toml:3:");
  check("syntax.toml", dir.path + "/syntax.toml:1:");
  check("nested.toml", "include is allowed in the main config file only");
  check("missing.toml", "included file \"" + dir.path + "/missing.toml\" does not exist");
}
