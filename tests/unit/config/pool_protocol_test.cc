#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#include <string>

#include "gateway/config/loader.h"

using namespace gw::config;

namespace {

std::string config(const std::string& pool_lines) {
  return R"([[listeners]]
listen = "127.0.0.1:0"
[[routes]]
service = "a"
[services.a.pools.p]
endpoints = ["127.0.0.1:1"]
)" + pool_lines;
}

std::string allErrors(const LoadResult& result) {
  std::string out;
  for (const ConfigError& e : result.errors) out += e.toString() + "\n";
  return out;
}

const Pool& onlyPool(const LoadResult& result) {
  return result.snapshot->services.at("a").pools.at("p");
}

}  // namespace

TEST_CASE("a pool speaks HTTP/1 upstream by default, with 100 streams per h2 connection") {
  LoadResult result = loadConfigString(config(""), "t.toml");
  INFO(allErrors(result));
  REQUIRE(result.ok());
  CHECK(onlyPool(result).protocol == Pool::Protocol::Http1);
  CHECK(onlyPool(result).max_streams_per_connection == 100);
  CHECK(std::string(protocolName(Pool::Protocol::Http1)) == "http1");
}

TEST_CASE("protocol = h2c and max_streams_per_connection are read") {
  LoadResult result =
      loadConfigString(config("protocol = \"h2c\"\nmax_streams_per_connection = 8\n"), "t.toml");
  INFO(allErrors(result));
  REQUIRE(result.ok());
  CHECK(onlyPool(result).protocol == Pool::Protocol::H2c);
  CHECK(onlyPool(result).max_streams_per_connection == 8);
  CHECK(std::string(protocolName(Pool::Protocol::H2c)) == "h2c");
}

TEST_CASE("protocol = http1 is accepted explicitly") {
  LoadResult result = loadConfigString(config("protocol = \"http1\"\n"), "t.toml");
  INFO(allErrors(result));
  REQUIRE(result.ok());
  CHECK(onlyPool(result).protocol == Pool::Protocol::Http1);
}

TEST_CASE("an unknown protocol is an error with file and line") {
  LoadResult result = loadConfigString(config("protocol = \"h3\"\n"), "t.toml");
  REQUIRE_FALSE(result.ok());
  REQUIRE(result.errors.size() == 1);
  std::string text = result.errors[0].toString();
  CHECK(text.find("t.toml:7") != std::string::npos);
  CHECK(text.find("protocol must be") != std::string::npos);
}

TEST_CASE("protocol = h2 without tls is an error") {
  LoadResult result = loadConfigString(config("protocol = \"h2\"\n"), "t.toml");
  REQUIRE_FALSE(result.ok());
  REQUIRE(result.errors.size() == 1);
  std::string text = result.errors[0].toString();
  CHECK(text.find("t.toml:7") != std::string::npos);
  CHECK(text.find("needs tls") != std::string::npos);
}

TEST_CASE("protocol = h2c with tls is an error") {
  LoadResult result =
      loadConfigString(config("tls = { verify = false }\nprotocol = \"h2c\"\n"), "t.toml");
  REQUIRE_FALSE(result.ok());
  REQUIRE(result.errors.size() == 1);
  std::string text = result.errors[0].toString();
  CHECK(text.find("t.toml:8") != std::string::npos);
  CHECK(text.find("cleartext") != std::string::npos);
}

TEST_CASE("protocol must be a string and max_streams_per_connection in range") {
  for (const char* bad : {"protocol = 2\n", "max_streams_per_connection = 0\n",
                          "max_streams_per_connection = \"many\"\n"}) {
    INFO(bad);
    LoadResult result = loadConfigString(config(bad), "t.toml");
    REQUIRE_FALSE(result.ok());
    REQUIRE(result.errors.size() == 1);
    CHECK(result.errors[0].toString().find("t.toml:7") != std::string::npos);
  }
}
