#pragma once
// request_id: keeps a valid incoming request id or makes a new one, passes it upstream
// and back to the client, and puts it in local replies and ${request_id}.
//
//   { type = "request_id", header = "X-Request-Id" }

#include <string_view>
#include <vector>

#include "gateway/filter/registry.h"

namespace gw::filters::request_id {

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table);
std::vector<std::string_view> keys();

// 1-128 bytes of [A-Za-z0-9._:+/=-]: anything else (or nothing) gets a new id.
bool isValidId(std::string_view id);
// A random UUID (version 4) in `out` (36 bytes), from a per-thread generator.
void generateId(char out[36]);

}  // namespace gw::filters::request_id
