// libFuzzer target: the auth_jwt token verifier, the JWKS parser and the JSON scanner.
//
// Every input is used three ways:
//   1. as a token string, verified against a fixed JWKS (an HS256 secret, an RS256 and an
//      ES256 public key) and fixed expectations (issuer, audience, exp required);
//   2. split at its first newline into a header and a payload JSON text that the harness
//      signs with the HS256 secret, so the claim checks (exp, nbf, iss, aud) behind the
//      signature are reached with fuzzed claims;
//   3. as a JSON text: jsonValid(), a walk over JsonObject/JsonArray, and parseJwks().
#include <openssl/hmac.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "filters/auth_jwt/json_scan.h"
#include "filters/auth_jwt/jwks.h"
#include "filters/auth_jwt/jwt.h"
#include "gateway/filter/arena.h"

namespace {

using namespace gw::filters::auth_jwt;

// The secret is "0123456789abcdef0123456789abcdef" (base64url below); the RSA and EC keys
// are public halves of keys made for the seed corpus (tests/fuzz/README.md).
constexpr std::string_view kSecret = "0123456789abcdef0123456789abcdef";
constexpr std::string_view kJwks = R"({"keys":[
 {"kty":"oct","kid":"hs","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"},
 {"kty":"RSA","kid":"rs","n":"0-HZNusYHtUbQrAJ89YfL7Kopx0bwYr_yWrQ3siJzz2yDPOv6pbQ1B5Ag6CpRao6hSF5aUj3aiSyi6YcLOwk2PPd46GdZqkaWYr9Qut1s3GQtD8kU7lNtMElnAk_n03VxonMGdAweKQwgYlgSFaFBVYgutCesZkg2HFXRSKXmF26ch2ExWMpsRJriI0UGlEmGQ0kpOROLE11I593-A-E_yW93wi28mE2pdtqjMS9C0tnWWRckR2MgDQ7QefEqI1nhOHkuGAErugzAEWhO36bwuZsEMkbxFXpPxfgQu0ZInbPK1bbCovXNdcNAIjG06SfPhAc4GU8g3S7JFZY7vI88w","e":"AQAB"},
 {"kty":"EC","kid":"es","crv":"P-256","x":"_IxQIW7CW-PS67k5xmjNfOyP4ptLhd6mAN4CZMJ-ZF8","y":"KY_TI0oi6WpgKAEO2GNvB0kKfMjTAqK0oPUwgm0rols"}
]})";
constexpr int64_t kNow = 1700000000;  // the seeds' tokens are valid at this time

const Jwks& keys() {
  static const Jwks jwks = [] {
    Jwks out;
    std::string error;
    if (!parseJwks(kJwks, out, error) || out.keys.size() != 3) std::abort();
    return out;
  }();
  return jwks;
}

std::string base64Url(std::string_view in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
  return out;
}

void verify(std::string_view token) {
  Expectations expect;
  expect.issuer = "https://issuer.example";
  expect.audience = "api";
  gw::filter::Arena arena;
  std::string_view claims;
  JwtError error = verifyJwt(token, keys(), expect, kNow, arena, claims);
  if (describe(error) == nullptr) std::abort();
  if (error == JwtError::None && !jsonValid(claims)) std::abort();  // claims are checked JSON
}

void walk(std::string_view json, int depth) {
  if (depth > 4) return;
  JsonObject object(json);
  std::string_view key;
  JsonValue value;
  int64_t n = 0;
  while (object.next(key, value)) {
    (void)value.asInt(n);
    if (value.type == JsonValue::Type::Object) walk(value.raw, depth + 1);
    if (value.type == JsonValue::Type::Array) {
      JsonArray array(value.raw);
      JsonValue element;
      while (array.next(element)) {
        if (element.type == JsonValue::Type::Object) walk(element.raw, depth + 1);
      }
    }
  }
  (void)object.find("alg", value);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  verify(text);

  size_t newline = text.find('\n');
  if (newline != std::string_view::npos) {
    std::string signing_input =
        base64Url(text.substr(0, newline)) + "." + base64Url(text.substr(newline + 1));
    unsigned char mac[32];
    unsigned int mac_length = 0;
    HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
         reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac,
         &mac_length);
    verify(signing_input + "." +
           base64Url(std::string_view(reinterpret_cast<const char*>(mac), mac_length)));
  }

  (void)jsonValid(text);
  walk(text, 0);
  Jwks parsed;
  std::string error;
  if (!parseJwks(text, parsed, error) && error.empty()) std::abort();
  std::string decoded;
  (void)base64UrlDecode(text, decoded);
  return 0;
}
