#pragma once
// direct_response: answers every request itself with a fixed status and body; the
// upstream is never contacted.
//
//   { type = "direct_response", status = 200, body = "ok\n", content_type = "text/plain" }

#include <string_view>
#include <vector>

#include "gateway/filter/registry.h"

namespace gw::filters::direct_response {

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table);
std::vector<std::string_view> keys();

}  // namespace gw::filters::direct_response
