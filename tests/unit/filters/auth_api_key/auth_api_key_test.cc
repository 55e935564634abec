#define CATCH_CONFIG_MAIN
#include "filters/auth_api_key/auth_api_key.h"

#include <catch2/catch.hpp>

using namespace gw::filters::auth_api_key;

TEST_CASE("keys match by digest and give their name") {
  KeySet keys;
  keys.add("alice", "k-alice");
  keys.add("bob", "k-bob");
  REQUIRE(keys.match("k-bob") != nullptr);
  CHECK(*keys.match("k-bob") == "bob");
  CHECK(*keys.match("k-alice") == "alice");
  CHECK(keys.match("k-bo") == nullptr);
  CHECK(keys.match("k-bobb") == nullptr);
  CHECK(keys.match("") == nullptr);
  CHECK(keys.match(std::string(100000, 'x')) == nullptr);
}

TEST_CASE("query parameters are taken out of the target") {
  std::string_view value;
  std::string without;
  REQUIRE(takeQueryParam("/p?a=1&api_key=s3&b=2", "api_key", value, without));
  CHECK(value == "s3");
  CHECK(without == "/p?a=1&b=2");
  REQUIRE(takeQueryParam("/p?api_key=s3", "api_key", value, without));
  CHECK(without == "/p");
  REQUIRE(takeQueryParam("/p?api_key", "api_key", value, without));
  CHECK(value.empty());
  CHECK_FALSE(takeQueryParam("/p?xapi_key=1", "api_key", value, without));
  CHECK_FALSE(takeQueryParam("/p", "api_key", value, without));
}
