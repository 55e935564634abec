#pragma once
// cors: Cross-Origin Resource Sharing. Preflight requests (OPTIONS with Origin and
// Access-Control-Request-Method) are answered here: 204 with the allow headers for an
// allowed origin and method, 403 otherwise. Other requests from an allowed origin get
// Access-Control-Allow-Origin (and the rest) on their response; from other origins they
// pass unchanged (the browser enforces the policy).
//
//   { type = "cors", allow_origins = ["https://app.example.com"], allow_methods = ["GET", "POST"],
//     allow_headers = ["Content-Type", "Authorization"], expose_headers = ["X-Request-Id"],
//     allow_credentials = true, max_age = "10m" }

#include <string>
#include <string_view>
#include <vector>

#include "gateway/filter/registry.h"

namespace gw::filters::cors {

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table);
std::vector<std::string_view> keys();

struct Policy {
  std::vector<std::string> origins;  // exact (case-sensitive, per RFC 6454 serialisation)
  bool any_origin = false;           // "*"
  std::vector<std::string> methods;  // upper-case
  std::string methods_joined;        // "GET, POST"
  std::string headers_joined;        // "Content-Type, Authorization"
  std::string expose_joined;
  bool credentials = false;
  std::string max_age;  // seconds, as text; empty: not sent

  bool allowsOrigin(std::string_view origin) const;
  bool allowsMethod(std::string_view method) const;
};

}  // namespace gw::filters::cors
