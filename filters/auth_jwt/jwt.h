#pragma once
// Verifying a compact JWS token (RFC 7515/7519): signature with a key from the JWKS,
// then exp, nbf, iss and aud with a leeway for clock skew.

#include <cstdint>
#include <string>
#include <string_view>

#include "filters/auth_jwt/jwks.h"
#include "gateway/filter/arena.h"

namespace gw::filters::auth_jwt {

enum class JwtError {
  None,
  Malformed,    // not three base64url parts of JSON objects
  Algorithm,    // alg missing, "none", or not HS256/RS256/ES256
  UnknownKey,   // no key for the kid / alg
  Signature,    // no key verifies it
  Expired,      // exp + leeway <= now (or exp missing when required)
  NotYetValid,  // nbf - leeway > now
  Issuer,       // iss differs from the expected one
  Audience,     // aud (string or array) lacks the expected one
};
const char* describe(JwtError error);

struct Expectations {
  std::string issuer;    // empty: not checked
  std::string audience;  // empty: not checked
  int64_t leeway_s = 30;
  bool require_exp = true;
};

// On success `claims` is the decoded payload JSON (in `arena`).
JwtError verifyJwt(std::string_view token, const Jwks& keys, const Expectations& expect,
                   int64_t now_s, filter::Arena& arena, std::string_view& claims);

}  // namespace gw::filters::auth_jwt
