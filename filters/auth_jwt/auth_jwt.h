#pragma once
// auth_jwt: the request must carry "Authorization: Bearer <JWT>" signed with a key from
// a local JWKS file (HS256, RS256 or ES256; the file is read at every config load, so a
// reload picks up rotated keys). exp (required unless require_exp = false), nbf, iss and
// aud are checked with `leeway` for clock skew. Selected claims go upstream as headers
// (a client's own values of those headers are always removed). Failure: 401 with
// WWW-Authenticate: Bearer ... error="invalid_token".
//
//   { type = "auth_jwt", jwks_file = "keys/jwks.json", issuer = "https://id.example.com",
//     audience = "api", leeway = "30s", claims_to_headers = { sub = "X-User-Id" } }

#include <string_view>
#include <vector>

#include "gateway/filter/registry.h"

namespace gw::filters::auth_jwt {

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table);
std::vector<std::string_view> keys();

}  // namespace gw::filters::auth_jwt
