#define CATCH_CONFIG_MAIN
// withResolved: how a round of re-resolution changes (or keeps) endpoint addresses.
#include "gateway/health/dns_refresher.h"

#include <catch2/catch.hpp>

#include "gateway/config/loader.h"

namespace gw::health {
namespace {

std::shared_ptr<const config::Snapshot> load() {
  config::LoadResult r = config::loadConfigString(
      "[[listeners]]\nlisten = \"127.0.0.1:0\"\n[services.s.pools.p]\n"
      "endpoints = [\"localhost:8080\", \"127.0.0.1:9000\"]\n",
      "t.toml");
  REQUIRE(r.ok());
  return r.snapshot;
}

net::SocketAddress ip(const char* text) { return *net::parseIpPort(text, 0); }

const config::Endpoint& endpoint(const config::Snapshot& s, size_t i) {
  return s.services.at("s").pools.at("p").endpoints.at(i);
}

TEST_CASE("new addresses for a host replace the old ones, with the endpoint's port") {
  auto snapshot = load();
  Resolved r{{"localhost", {ip("127.0.0.7"), ip("127.0.0.8")}}};
  auto next = withResolved(*snapshot, r);
  REQUIRE(next != nullptr);
  const config::Endpoint& e = endpoint(*next, 0);
  REQUIRE(e.addresses.size() == 2);
  CHECK(e.addresses[0].toString() == "127.0.0.7:8080");
  CHECK(e.addresses[1].toString() == "127.0.0.8:8080");
  CHECK(e.key == "localhost:8080");  // identity unchanged: runtime state survives
  CHECK(endpoint(*next, 1).addresses == endpoint(*snapshot, 1).addresses);
  CHECK(endpoint(*snapshot, 0).addresses != e.addresses);  // the original is untouched
}

TEST_CASE("unchanged, failed or empty lookups change nothing") {
  auto snapshot = load();
  // Same set (ports are applied before comparing, so strip them the way lookups come).
  Resolved stripped;
  for (auto a : endpoint(*snapshot, 0).addresses) {
    stripped["localhost"].push_back(*net::parseIpPort(a.ipString(), 0));
  }
  CHECK(withResolved(*snapshot, stripped) == nullptr);
  CHECK(withResolved(*snapshot, Resolved{}) == nullptr);  // the lookup failed
  CHECK(withResolved(*snapshot, Resolved{{"localhost", {}}}) == nullptr);
  // A numeric endpoint is never re-resolved, even if a "host" of that text comes back.
  CHECK(withResolved(*snapshot, Resolved{{"127.0.0.1", {ip("127.0.0.9")}}}) == nullptr);
}

}  // namespace
}  // namespace gw::health
