#pragma once
// JSON Web Key Sets (RFC 7517) as the auth_jwt filter uses them: "oct" keys for HS256,
// "RSA" keys (n, e) for RS256, "EC" P-256 keys (x, y) for ES256. Loaded at config load;
// immutable afterwards and shared by every worker (OpenSSL public-key verification is
// safe on a shared EVP_PKEY).

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gw::filters::auth_jwt {

enum class Alg { HS256, RS256, ES256 };

struct Jwk {
  std::string kid;  // may be empty
  Alg alg = Alg::HS256;
  std::string secret;              // HS256
  std::shared_ptr<EVP_PKEY> pkey;  // RS256 / ES256
};

struct Jwks {
  std::vector<Jwk> keys;
};

// Parses a JWKS document ({"keys": [...]}). Keys of other types or curves are skipped;
// a malformed key is an error. False with `error` set on failure.
bool parseJwks(std::string_view json, Jwks& out, std::string& error);

// Base64url without padding (RFC 7515 §2). False on invalid input. `out` is resized.
bool base64UrlDecode(std::string_view in, std::string& out);
// Decodes into `out` (at least in.size() * 3 / 4 + 3 bytes); returns the length or -1.
long base64UrlDecodeTo(std::string_view in, unsigned char* out);

}  // namespace gw::filters::auth_jwt
