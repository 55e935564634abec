#define CATCH_CONFIG_MAIN
#include "gateway/filter/value_template.h"

#include <catch2/catch.hpp>

using gw::filter::Context;
using gw::filter::ValueTemplate;

TEST_CASE("variables render from the context; $$ is a dollar") {
  Context ctx;
  ctx.request.client_ip = "10.0.0.1";
  ctx.request.route = "api";
  ctx.request.host = "h.test";
  ctx.request.path_and_query = "/p?q";
  ctx.request.method = "GET";
  ctx.request_id = "id-1";
  ValueTemplate t;
  std::string error;
  REQUIRE(t.parse("${client_ip}|${route}|${host}|${path}|${method}|${request_id}|$$x", error));
  CHECK(t.render(ctx) == "10.0.0.1|api|h.test|/p?q|GET|id-1|$x");
  CHECK_FALSE(t.constant());
  REQUIRE(t.parse("plain", error));
  CHECK(t.constant());
  CHECK(t.render(ctx) == "plain");
  REQUIRE(t.parse("", error));
  CHECK(t.render(ctx).empty());
  REQUIRE(t.parse("${request_id}", error));
  ctx.request_id = {};
  CHECK(t.render(ctx).empty());
}

TEST_CASE("bad templates are refused with a reason") {
  ValueTemplate t;
  std::string error;
  CHECK_FALSE(t.parse("${nope}", error));
  CHECK(error.find("unknown variable ${nope}") != std::string::npos);
  CHECK_FALSE(t.parse("${host", error));
  CHECK(error.find("unterminated") != std::string::npos);
  CHECK_FALSE(t.parse("cost $5", error));
  CHECK_FALSE(t.parse("trailing $", error));
}
