#pragma once
// body_limit: a request body limit for the route (below the listener's max_body). A
// declared Content-Length over the limit gets 413 before anything is sent upstream; a
// chunked body is counted as it streams and cut off with 413 (and the connection
// closed) at the first byte over the limit.
//
//   { type = "body_limit", max = "1MiB" }

#include <cstdint>
#include <string_view>
#include <vector>

#include "gateway/filter/registry.h"

namespace gw::filters::body_limit {

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table);
std::vector<std::string_view> keys();

}  // namespace gw::filters::body_limit
