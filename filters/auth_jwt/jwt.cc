#include "filters/auth_jwt/jwt.h"

#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/hmac.h>

#include "filters/auth_jwt/json_scan.h"

namespace gw::filters::auth_jwt {
namespace {

constexpr size_t kMaxTokenLength = 16 * 1024;

bool decodePart(std::string_view part, filter::Arena& arena, std::string_view& out) {
  auto* buf = static_cast<unsigned char*>(arena.allocate(part.size() * 3 / 4 + 3, 1));
  long n = base64UrlDecodeTo(part, buf);
  if (n < 0) return false;
  out = std::string_view(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
  return true;
}

bool verifyHmac(const Jwk& key, std::string_view input, std::string_view sig) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), key.secret.data(), static_cast<int>(key.secret.size()),
           reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac,
           &mac_len) == nullptr) {
    return false;
  }
  return sig.size() == mac_len && CRYPTO_memcmp(mac, sig.data(), mac_len) == 0;
}

bool verifyDigest(EVP_PKEY* pkey, std::string_view input, const unsigned char* sig,
                  size_t sig_len) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok =
      ctx != nullptr && EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, pkey) == 1 &&
      EVP_DigestVerify(ctx, sig, sig_len, reinterpret_cast<const unsigned char*>(input.data()),
                       input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

bool verifyEs256(const Jwk& key, std::string_view input, std::string_view sig) {
  // JWS carries r || s (32 bytes each); OpenSSL wants a DER ECDSA-Sig-Value.
  if (sig.size() != 64) return false;
  const auto* raw = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* ecdsa = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(raw, 32, nullptr);
  BIGNUM* s = BN_bin2bn(raw + 32, 32, nullptr);
  if (ecdsa == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(ecdsa, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(ecdsa);
    return false;
  }
  unsigned char der[80];
  unsigned char* p = der;
  int len =
      i2d_ECDSA_SIG(ecdsa, nullptr) <= static_cast<int>(sizeof der) ? i2d_ECDSA_SIG(ecdsa, &p) : -1;
  ECDSA_SIG_free(ecdsa);
  return len > 0 && verifyDigest(key.pkey.get(), input, der, static_cast<size_t>(len));
}

bool verifyWith(const Jwk& key, std::string_view input, std::string_view sig) {
  switch (key.alg) {
    case Alg::HS256:
      return verifyHmac(key, input, sig);
    case Alg::RS256:
      return verifyDigest(key.pkey.get(), input, reinterpret_cast<const unsigned char*>(sig.data()),
                          sig.size());
    case Alg::ES256:
      return verifyEs256(key, input, sig);
  }
  return false;
}

bool audienceHas(const JsonValue& aud, std::string_view want) {
  if (aud.isString()) return aud.raw == want;
  if (aud.type != JsonValue::Type::Array) return false;
  JsonArray array(aud.raw);
  JsonValue v;
  while (array.next(v)) {
    if (v.isString() && v.raw == want) return true;
  }
  return false;
}

}  // namespace

const char* describe(JwtError error) {
  switch (error) {
    case JwtError::None:
      return "ok";
    case JwtError::Malformed:
      return "malformed token";
    case JwtError::Algorithm:
      return "unsupported token algorithm";
    case JwtError::UnknownKey:
      return "unknown signing key";
    case JwtError::Signature:
      return "invalid token signature";
    case JwtError::Expired:
      return "token expired";
    case JwtError::NotYetValid:
      return "token not yet valid";
    case JwtError::Issuer:
      return "wrong token issuer";
    case JwtError::Audience:
      return "wrong token audience";
  }
  return "invalid token";
}

JwtError verifyJwt(std::string_view token, const Jwks& keys, const Expectations& expect,
                   int64_t now_s, filter::Arena& arena, std::string_view& claims) {
  if (token.empty() || token.size() > kMaxTokenLength) return JwtError::Malformed;
  size_t dot1 = token.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return JwtError::Malformed;
  }
  std::string_view header_json;
  std::string_view payload_json;
  std::string_view sig;
  if (!decodePart(token.substr(0, dot1), arena, header_json) ||
      !decodePart(token.substr(dot1 + 1, dot2 - dot1 - 1), arena, payload_json) ||
      !decodePart(token.substr(dot2 + 1), arena, sig) || !jsonValid(header_json) ||
      !jsonValid(payload_json)) {
    return JwtError::Malformed;
  }
  JsonObject header(header_json);
  JsonObject payload(payload_json);
  if (!header.valid() || !payload.valid()) return JwtError::Malformed;

  JsonValue alg_value;
  if (!header.find("alg", alg_value) || !alg_value.isString()) return JwtError::Algorithm;
  Alg alg;
  if (alg_value.raw == "HS256") {
    alg = Alg::HS256;
  } else if (alg_value.raw == "RS256") {
    alg = Alg::RS256;
  } else if (alg_value.raw == "ES256") {
    alg = Alg::ES256;
  } else {
    return JwtError::Algorithm;  // including "none"
  }
  JsonValue kid;
  bool has_kid = header.find("kid", kid) && kid.isString();
  std::string_view input = token.substr(0, dot2);
  bool candidate = false;
  bool verified = false;
  for (const Jwk& key : keys.keys) {
    // The key decides the algorithm: a token cannot pick HMAC with an RSA key's bytes.
    if (key.alg != alg || (has_kid && !key.kid.empty() && key.kid != kid.raw)) continue;
    candidate = true;
    if (verifyWith(key, input, sig)) {
      verified = true;
      break;
    }
  }
  if (!candidate) return JwtError::UnknownKey;
  if (!verified) return JwtError::Signature;

  int64_t t = 0;
  JsonValue v;
  if (payload.find("exp", v)) {
    if (!v.asInt(t)) return JwtError::Malformed;
    // The token's number moves to neither side: "exp": 9223372036854775807 + leeway
    // overflowed (UB; seen with the jwt fuzzer's harness). The clock and the leeway are ours.
    if (t <= now_s - expect.leeway_s) return JwtError::Expired;
  } else if (expect.require_exp) {
    return JwtError::Expired;
  }
  if (payload.find("nbf", v)) {
    if (!v.asInt(t)) return JwtError::Malformed;
    if (t > now_s + expect.leeway_s) return JwtError::NotYetValid;  // as for exp
  }
  if (!expect.issuer.empty() &&
      (!payload.find("iss", v) || !v.isString() || v.raw != expect.issuer)) {
    return JwtError::Issuer;
  }
  if (!expect.audience.empty() && (!payload.find("aud", v) || !audienceHas(v, expect.audience))) {
    return JwtError::Audience;
  }
  claims = payload_json;
  return JwtError::None;
}

}  // namespace gw::filters::auth_jwt
