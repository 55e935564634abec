#define CATCH_CONFIG_MAIN
#include <openssl/hmac.h>

#include <catch2/catch.hpp>
#include <string>

#include "filters/auth_jwt/json_scan.h"
#include "filters/auth_jwt/jwks.h"
#include "filters/auth_jwt/jwt.h"

using namespace gw::filters::auth_jwt;

namespace {

std::string b64(std::string_view in) {
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

const std::string kSecret = "0123456789abcdef0123456789abcdef";

std::string hs256(const std::string& header, const std::string& payload) {
  std::string input = b64(header) + "." + b64(payload);
  unsigned char mac[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + b64(std::string(reinterpret_cast<char*>(mac), len));
}

Jwks octKeys() {
  Jwks jwks;
  std::string error;
  std::string doc = R"({"keys":[{"kty":"oct","kid":"k1","k":")" + b64(kSecret) + R"("}]})";
  REQUIRE(parseJwks(doc, jwks, error));
  REQUIRE(jwks.keys.size() == 1);
  return jwks;
}

}  // namespace

TEST_CASE("json scanner: members, arrays, raw strings, integers") {
  JsonObject o(R"( {"a": "x\"y", "n": 12, "f": 1.5, "arr": [1, "two", {"z": null}], "t": true} )");
  std::string_view k;
  JsonValue v;
  REQUIRE(o.next(k, v));
  CHECK(k == "a");
  CHECK(v.raw == "x\\\"y");
  int64_t n = 0;
  REQUIRE(o.find("n", v));
  CHECK(v.asInt(n));
  CHECK(n == 12);
  REQUIRE(o.find("f", v));
  CHECK(v.asInt(n));
  CHECK(n == 1);
  REQUIRE(o.find("arr", v));
  JsonArray a(v.raw);
  int count = 0;
  while (a.next(v)) ++count;
  CHECK(count == 3);
  CHECK(jsonValid(R"({"a":[1,2,{"b":"c"}]})"));
  for (const char* bad :
       {"", "{", "{\"a\"}", "{\"a\":}", "[1,]", "{\"a\":1}x", "\"\x01\"", "{\"a\":\"\\q\"}"}) {
    INFO(bad);
    CHECK_FALSE(jsonValid(bad));
  }
  CHECK_FALSE(jsonValid(std::string(100, '[') + std::string(100, ']')));  // too deep
}

TEST_CASE("base64url decoding") {
  std::string out;
  REQUIRE(base64UrlDecode(b64("hello?>"), out));
  CHECK(out == "hello?>");
  CHECK_FALSE(base64UrlDecode("a", out));
  CHECK_FALSE(base64UrlDecode("ab=c", out));
  CHECK_FALSE(base64UrlDecode("a+b/", out));
}

TEST_CASE("HS256 tokens verify; claims are checked with leeway") {
  Jwks jwks = octKeys();
  Expectations expect;
  expect.issuer = "iss1";
  expect.audience = "api";
  expect.leeway_s = 10;
  gw::filter::Arena arena;
  std::string_view claims;
  const int64_t now = 1'700'000'000;
  auto token = [&](const std::string& payload) {
    return hs256(R"({"alg":"HS256","kid":"k1"})", payload);
  };
  CHECK(verifyJwt(token(R"({"iss":"iss1","aud":"api","exp":1700000100})"), jwks, expect, now, arena,
                  claims) == JwtError::None);
  CHECK(claims.find("\"iss1\"") != std::string_view::npos);
  CHECK(verifyJwt(token(R"({"iss":"iss1","aud":["x","api"],"exp":1699999995})"), jwks, expect, now,
                  arena, claims) == JwtError::None);  // within leeway
  CHECK(verifyJwt(token(R"({"iss":"iss1","aud":"api","exp":1699999990})"), jwks, expect, now, arena,
                  claims) == JwtError::Expired);
  CHECK(verifyJwt(token(R"({"iss":"iss1","aud":"api"})"), jwks, expect, now, arena, claims) ==
        JwtError::Expired);
  CHECK(verifyJwt(token(R"({"iss":"iss1","aud":"api","exp":1700000100,"nbf":1700000011})"), jwks,
                  expect, now, arena, claims) == JwtError::NotYetValid);
  CHECK(verifyJwt(token(R"({"iss":"x","aud":"api","exp":1700000100})"), jwks, expect, now, arena,
                  claims) == JwtError::Issuer);
  CHECK(verifyJwt(token(R"({"iss":"iss1","aud":["x"],"exp":1700000100})"), jwks, expect, now, arena,
                  claims) == JwtError::Audience);
  CHECK(verifyJwt(token(R"({"iss":"iss1","aud":"api","exp":"soon"})"), jwks, expect, now, arena,
                  claims) == JwtError::Malformed);
  // The extremes of int64 compare without overflow (UBSan found "exp" + leeway overflowing).
  CHECK(verifyJwt(token(R"({"iss":"iss1","aud":"api","exp":9223372036854775807})"), jwks, expect,
                  now, arena, claims) == JwtError::None);
  CHECK(verifyJwt(token(R"({"iss":"iss1","aud":"api","exp":-9223372036854775808})"), jwks, expect,
                  now, arena, claims) == JwtError::Expired);
  CHECK(
      verifyJwt(token(R"({"iss":"iss1","aud":"api","exp":1700000100,"nbf":-9223372036854775808})"),
                jwks, expect, now, arena, claims) == JwtError::None);
  CHECK(verifyJwt(token(R"({"iss":"iss1","aud":"api","exp":1700000100,"nbf":9223372036854775807})"),
                  jwks, expect, now, arena, claims) == JwtError::NotYetValid);
}

TEST_CASE("bad signatures, algorithms and shapes are refused") {
  Jwks jwks = octKeys();
  Expectations expect;
  expect.require_exp = false;
  gw::filter::Arena arena;
  std::string_view claims;
  std::string good = hs256(R"({"alg":"HS256"})", R"({"sub":"a"})");
  CHECK(verifyJwt(good, jwks, expect, 0, arena, claims) == JwtError::None);
  std::string tampered = good;
  tampered[tampered.size() - 2] = tampered[tampered.size() - 2] == 'A' ? 'B' : 'A';
  CHECK(verifyJwt(tampered, jwks, expect, 0, arena, claims) == JwtError::Signature);
  CHECK(verifyJwt(hs256(R"({"alg":"none"})", "{}"), jwks, expect, 0, arena, claims) ==
        JwtError::Algorithm);
  CHECK(verifyJwt(hs256(R"({"alg":"RS256"})", "{}"), jwks, expect, 0, arena, claims) ==
        JwtError::UnknownKey);
  CHECK(verifyJwt(hs256(R"({"alg":"HS256","kid":"k2"})", "{}"), jwks, expect, 0, arena, claims) ==
        JwtError::UnknownKey);
  for (const char* bad : {"", "a", "a.b", "a.b.c.d", "*.*.*", "e30.e30"}) {
    INFO(bad);
    CHECK(verifyJwt(bad, jwks, expect, 0, arena, claims) == JwtError::Malformed);
  }
  CHECK(verifyJwt(hs256("[]", "{}"), jwks, expect, 0, arena, claims) == JwtError::Malformed);
}

TEST_CASE("JWKS documents: bad ones are refused with a reason") {
  Jwks jwks;
  std::string error;
  CHECK_FALSE(parseJwks("{", jwks, error));
  CHECK_FALSE(parseJwks(R"({"nokeys":[]})", jwks, error));
  CHECK_FALSE(parseJwks(R"({"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]})", jwks, error));
  CHECK(error.find("2048") != std::string::npos);
  CHECK_FALSE(parseJwks(R"({"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]})", jwks, error));
  CHECK(parseJwks(R"({"keys":[{"kty":"OKP","crv":"Ed25519","x":"AA"}]})", jwks, error));
  CHECK(jwks.keys.empty());  // unsupported types are skipped
}
