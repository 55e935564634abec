#define CATCH_CONFIG_MAIN
// The config loader's side of filters, with test-only filter types registered: lookups,
// the chain for all routes, order, and file:line errors.
#include <catch2/catch.hpp>
#include <string>

#include "gateway/config/loader.h"
#include "gateway/filter/registry.h"

using namespace gw;

namespace {

class Nop final : public filter::Filter {};
class NopFactory final : public filter::FilterFactory {
 public:
  explicit NopFactory(int64_t n) : n(n) {}
  filter::Filter* create(filter::Context& ctx) const override { return ctx.arena().make<Nop>(); }
  int64_t n;
};

std::shared_ptr<const filter::FilterFactory> parseNop(filter::ConfigTable& table) {
  int64_t n = 0;
  table.getInteger("n", 0, 10, n);
  if (table.errorCount() != 0) return nullptr;
  return std::make_shared<NopFactory>(n);
}

void registerOnce() {
  static bool done = [] {
    filter::Registry::global().add("nop", &parseNop, {"n"});
    return true;
  }();
  (void)done;
}

const char* kBase = R"(
[[listeners]]
listen = "127.0.0.1:0"

[[filters]]
type = "nop"
n = 1

[[routes]]
name = "a"
service = "s"
filters = [{ type = "nop", n = 2 }, { type = "nop", n = 3 }]

[[routes]]
name = "b"
service = "s"

[services.s]
pools.main.endpoints = ["127.0.0.1:9"]
)";

std::string errors(const config::LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.toString() + "\n";
  return out;
}

int64_t nOf(const filter::ChainConfig& chain, size_t i) {
  return static_cast<const NopFactory&>(*chain.factories.at(i)).n;
}

}  // namespace

TEST_CASE("the chain for all routes comes first, then the route's own, in order") {
  registerOnce();
  config::LoadResult r = config::loadConfigString(kBase, "t.toml");
  INFO(errors(r));
  REQUIRE(r.ok());
  const config::Snapshot& s = *r.snapshot;
  REQUIRE(s.route_filters.size() == 2);
  const filter::ChainConfig* a = s.filtersFor(0);
  REQUIRE(a->factories.size() == 3);
  CHECK(nOf(*a, 0) == 1);
  CHECK(nOf(*a, 1) == 2);
  CHECK(nOf(*a, 2) == 3);
  CHECK(a->types == std::vector<std::string>{"nop", "nop", "nop"});
  const filter::ChainConfig* b = s.filtersFor(1);
  REQUIRE(b->factories.size() == 1);
  CHECK(a->factories[0] == b->factories[0]);  // shared, built once
  CHECK(s.filtersFor(2) == nullptr);
}

TEST_CASE("filter errors name the file, line and column") {
  registerOnce();
  auto fails = [](std::string text, const std::string& want_at, const std::string& want) {
    config::LoadResult r = config::loadConfigString(text, "t.toml");
    std::string all = errors(r);
    INFO(all);
    CHECK_FALSE(r.ok());
    CHECK(all.find(want_at) != std::string::npos);
    CHECK(all.find(want) != std::string::npos);
  };
  std::string base = kBase;
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string t = base;
    t.replace(t.find(from), from.size(), to);
    return t;
  };
  fails(replace("{ type = \"nop\", n = 2 }", "{ type = \"nopp\" }"),
        "t.toml:12:", "did you mean \"nop\"");
  fails(replace("{ type = \"nop\", n = 2 }", "{ type = \"nop\", n = 20 }"),
        "t.toml:12:", "between 0 and 10");
  fails(replace("{ type = \"nop\", n = 2 }", "{ type = \"nop\", m = 2 }"),
        "t.toml:12:", "unknown key \"m\"");
  fails(replace("{ type = \"nop\", n = 2 }", "{ n = 2 }"), "t.toml:12:", "needs a \"type\"");
  fails(replace("{ type = \"nop\", n = 2 }", "{ type = 7 }"),
        "t.toml:12:", "\"type\" must be a string");
  fails(replace("filters = [{", "filters = \"x\" #"), "t.toml:12:", "must be an array");
  fails(replace("n = 1", "n = \"one\""), "t.toml:7:", "must be an integer");
}
