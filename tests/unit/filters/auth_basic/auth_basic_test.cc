#define CATCH_CONFIG_MAIN
#include "filters/auth_basic/auth_basic.h"

#include <catch2/catch.hpp>
#include <string>

using namespace gw::filters::auth_basic;

TEST_CASE("stored hashes parse") {
  // Any 64 hex digits parse; check() below uses a real hash.
  User u;
  REQUIRE(parseStored(
      "sha256:abc:" +
          std::string("9c0e3f2a2b3d4d4be2a5b5fb2e0d4f0a0c4f7f1d2e3b4a5c6d7e8f9a0b1c2d3e"),
      u));
  CHECK(u.salt == "abc");
  CHECK_FALSE(parseStored("md5:abc:00", u));
  CHECK_FALSE(parseStored("sha256:abc:zz", u));
  CHECK_FALSE(parseStored("sha256::" + std::string(64, '0'), u));
  CHECK_FALSE(parseStored("sha256:abc:" + std::string(63, '0'), u));
}

TEST_CASE("check: right user and password only") {
  User alice;
  // printf saltpassword | sha256sum
  REQUIRE(parseStored(
      "sha256:salt:13601bda4ea78e55a07b98866d2be6be0744e3866f13c00c811cab608a28f322", alice));
  alice.name = "alice";
  std::vector<User> users{alice};
  REQUIRE(check(users, "alice", "password") != nullptr);
  CHECK(check(users, "alice", "passwore") == nullptr);
  CHECK(check(users, "bob", "password") == nullptr);
  CHECK(check(users, "", "") == nullptr);
}

TEST_CASE("base64 decoding, with and without padding") {
  char out[64];
  long n = base64Decode("YWxpY2U6cGFzc3dvcmQ=", out);
  REQUIRE(n == 14);
  CHECK(std::string(out, 14) == "alice:password");
  CHECK(base64Decode("YQ", out) == 1);
  CHECK(base64Decode("Y", out) == -1);
  CHECK(base64Decode("Y-_a", out) == -1);
}
