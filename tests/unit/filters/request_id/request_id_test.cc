#define CATCH_CONFIG_MAIN
#include "filters/request_id/request_id.h"

#include <catch2/catch.hpp>
#include <set>
#include <string>

using namespace gw::filters::request_id;

TEST_CASE("valid ids: 1-128 safe bytes") {
  CHECK(isValidId("abc-123.DEF"));
  CHECK(isValidId("a:b+c/d=e_f"));
  CHECK(isValidId(std::string(128, 'x')));
  CHECK_FALSE(isValidId(""));
  CHECK_FALSE(isValidId(std::string(129, 'x')));
  CHECK_FALSE(isValidId("has space"));
  CHECK_FALSE(isValidId("quote\""));
  CHECK_FALSE(isValidId("ctl\x01"));
  CHECK_FALSE(isValidId("\xc3\xa9"));
}

TEST_CASE("generated ids are version-4 UUIDs and differ") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    char id[36];
    generateId(id);
    std::string s(id, 36);
    REQUIRE(s[8] == '-');
    REQUIRE(s[13] == '-');
    REQUIRE(s[14] == '4');
    REQUIRE(s[18] == '-');
    REQUIRE(std::string("89ab").find(s[19]) != std::string::npos);
    REQUIRE(s[23] == '-');
    REQUIRE(isValidId(s));
    seen.insert(s);
  }
  CHECK(seen.size() == 1000);
}
