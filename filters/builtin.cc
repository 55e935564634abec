// The one explicit list of built-in filters: adding a filter is its folder plus a line here.
#include "filters/builtin.h"

#include "filters/auth_api_key/auth_api_key.h"
#include "filters/auth_basic/auth_basic.h"
#include "filters/auth_jwt/auth_jwt.h"
#include "filters/body_limit/body_limit.h"
#include "filters/cors/cors.h"
#include "filters/direct_response/direct_response.h"
#include "filters/headers/headers.h"
#include "filters/ip_access/ip_access.h"
#include "filters/rate_limit/rate_limit.h"
#include "filters/redirect/redirect.h"
#include "filters/request_id/request_id.h"
#include "filters/rewrite/rewrite.h"
#include "filters/trace/trace.h"

namespace gw::filters {

void registerBuiltins(filter::Registry& registry) {
  registry.add("request_id", &request_id::parse, request_id::keys());
  registry.add("trace", &trace::parse, trace::keys());
  registry.add("headers", &headers::parse, headers::keys());
  registry.add("rewrite", &rewrite::parse, rewrite::keys());
  registry.add("redirect", &redirect::parse, redirect::keys());
  registry.add("direct_response", &direct_response::parse, direct_response::keys());
  registry.add("cors", &cors::parse, cors::keys());
  registry.add("ip_access", &ip_access::parse, ip_access::keys());
  registry.add("body_limit", &body_limit::parse, body_limit::keys());
  registry.add("rate_limit", &rate_limit::parse, rate_limit::keys());
  registry.add("auth_api_key", &auth_api_key::parse, auth_api_key::keys());
  registry.add("auth_basic", &auth_basic::parse, auth_basic::keys());
  registry.add("auth_jwt", &auth_jwt::parse, auth_jwt::keys());
}

}  // namespace gw::filters
