#pragma once
// redirect: answers every request with a redirect to `location`, which may use
// ${host} (as the client sent it, with any port), ${path} (path and query), ${route},
// ${method}, ${client_ip}, ${request_id}.
//
//   { type = "redirect", location = "https://${host}${path}", status = 308 }

#include <string_view>
#include <vector>

#include "gateway/filter/registry.h"

namespace gw::filters::redirect {

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table);
std::vector<std::string_view> keys();

}  // namespace gw::filters::redirect
