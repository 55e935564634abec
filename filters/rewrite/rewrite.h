#pragma once
// rewrite: changes the path sent upstream (the query is kept). Either a prefix replace
// or an RE2 regex replace of the first match (\1..\9 in the replacement are groups).
// Runs on the path after the route's own prefix_rewrite.
//
//   { type = "rewrite", prefix = "/v1/", replacement = "/api/v1/" }
//   { type = "rewrite", regex = "^/users/([0-9]+)$", replacement = "/u/\\1" }

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/filter/arena.h"
#include "gateway/filter/registry.h"

namespace re2 {
class RE2;
}

namespace gw::filters::rewrite {

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table);
std::vector<std::string_view> keys();

struct Rule {
  std::string prefix;                     // prefix mode when regex is null
  std::shared_ptr<const re2::RE2> regex;  // regex mode
  std::string replacement;
};
// The rewritten target ("/path?query"), or `target` unchanged when the rule does not
// apply. A result that does not start with "/" gets one.
std::string_view apply(const Rule& rule, std::string_view target, filter::Arena& arena);

}  // namespace gw::filters::rewrite
