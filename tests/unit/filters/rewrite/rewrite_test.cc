#define CATCH_CONFIG_MAIN
#include "filters/rewrite/rewrite.h"

#include <re2/re2.h>

#include <catch2/catch.hpp>

using namespace gw::filters::rewrite;
using gw::filter::Arena;

namespace {
Rule prefix(std::string p, std::string r) {
  Rule rule;
  rule.prefix = std::move(p);
  rule.replacement = std::move(r);
  return rule;
}
Rule regex(const std::string& re, std::string r) {
  Rule rule;
  rule.regex = std::make_shared<const re2::RE2>(re);
  rule.replacement = std::move(r);
  return rule;
}
}  // namespace

TEST_CASE("prefix replace keeps the query and the leading slash") {
  Arena a;
  CHECK(apply(prefix("/old/", "/new/"), "/old/x?q=1", a) == "/new/x?q=1");
  CHECK(apply(prefix("/api/", ""), "/api/x", a) == "/x");
  CHECK(apply(prefix("/api", ""), "/api/x", a) == "/x");
  CHECK(apply(prefix("/api", ""), "/api", a) == "/");
  CHECK(apply(prefix("/api/", "/"), "/api/", a) == "/");
  CHECK(apply(prefix("/old/", "/new/"), "/other/x", a) == "/other/x");
  // The query is not part of the path: a prefix inside it does not match.
  CHECK(apply(prefix("/a?", "/b"), "/a?x", a) == "/a?x");
}

TEST_CASE("regex replace rewrites the first match of the path only") {
  Arena a;
  CHECK(apply(regex("^/users/([0-9]+)$", "/u/\\1"), "/users/42?x=/users/1", a) ==
        "/u/42?x=/users/1");
  CHECK(apply(regex("^/users/([0-9]+)$", "/u/\\1"), "/users/x", a) == "/users/x");
  CHECK(apply(regex("a", "b"), "/aaa", a) == "/baa");
  CHECK(apply(regex("^/v[0-9]+", ""), "/v2", a) == "/");
  CHECK(apply(regex("^/", ""), "/x", a) == "/x");
}
