#pragma once
// headers: edits request headers (on the way upstream) and response headers (on the way
// to the client). Values may use ${client_ip}, ${request_id}, ${route}, ${host},
// ${path}, ${method}. Each side applies remove, then set, then add, in file order.
//
//   { type = "headers", request_set = { "X-Env" = "prod" }, request_add = { ... },
//     request_remove = ["X-Debug"], response_set = { ... }, response_add = { ... },
//     response_remove = ["Server"] }

#include <string_view>
#include <vector>

#include "gateway/filter/registry.h"

namespace gw::filters::headers {

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table);
std::vector<std::string_view> keys();

}  // namespace gw::filters::headers
