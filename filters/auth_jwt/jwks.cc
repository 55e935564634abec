#include "filters/auth_jwt/jwks.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include "filters/auth_jwt/json_scan.h"

namespace gw::filters::auth_jwt {
namespace {

int decodeChar(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

using PkeyPtr = std::shared_ptr<EVP_PKEY>;

PkeyPtr fromData(const char* type, OSSL_PARAM_BLD* bld) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* pkey = nullptr;
  bool ok = params != nullptr && ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1 &&
            EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  if (!ok) {
    EVP_PKEY_free(pkey);
    return nullptr;
  }
  return PkeyPtr(pkey, EVP_PKEY_free);
}

PkeyPtr rsaKey(const std::string& n, const std::string& e) {
  BIGNUM* bn_n = BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()),
                           static_cast<int>(n.size()), nullptr);
  BIGNUM* bn_e = BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()),
                           static_cast<int>(e.size()), nullptr);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  PkeyPtr key;
  if (bn_n && bn_e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e)) {
    key = fromData("RSA", bld);
  }
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn_n);
  BN_free(bn_e);
  return key;
}

PkeyPtr ecKey(const std::string& x, const std::string& y) {
  if (x.size() != 32 || y.size() != 32) return nullptr;
  std::string point = "\x04" + x + y;  // uncompressed point
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  PkeyPtr key;
  if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
      OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size())) {
    key = fromData("EC", bld);
  }
  OSSL_PARAM_BLD_free(bld);
  return key;
}

bool stringMember(const JsonObject& o, std::string_view key, std::string_view& out) {
  JsonValue v;
  if (!o.find(key, v) || !v.isString()) return false;
  out = v.raw;
  return true;
}

bool b64Member(const JsonObject& o, std::string_view key, std::string& out) {
  std::string_view raw;
  return stringMember(o, key, raw) && base64UrlDecode(raw, out) && !out.empty();
}

}  // namespace

long base64UrlDecodeTo(std::string_view in, unsigned char* out) {
  if (in.size() % 4 == 1) return -1;
  long n = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = decodeChar(c);
    if (v < 0) return -1;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = static_cast<unsigned char>(acc >> bits);
    }
  }
  return n;
}

bool base64UrlDecode(std::string_view in, std::string& out) {
  out.resize(in.size() * 3 / 4 + 3);
  long n = base64UrlDecodeTo(in, reinterpret_cast<unsigned char*>(out.data()));
  if (n < 0) return false;
  out.resize(static_cast<size_t>(n));
  return true;
}

bool parseJwks(std::string_view json, Jwks& out, std::string& error) {
  if (!jsonValid(json)) {
    error = "not valid JSON";
    return false;
  }
  JsonObject doc(json);
  JsonValue keys;
  if (!doc.find("keys", keys) || keys.type != JsonValue::Type::Array) {
    error = "no \"keys\" array";
    return false;
  }
  JsonArray array(keys.raw);
  JsonValue element;
  int index = 0;
  while (array.next(element)) {
    std::string where = "key " + std::to_string(index++);
    if (element.type != JsonValue::Type::Object) {
      error = where + " is not an object";
      return false;
    }
    JsonObject key(element.raw);
    std::string_view kty;
    std::string_view kid;
    std::string_view use;
    if (!stringMember(key, "kty", kty)) {
      error = where + " has no \"kty\"";
      return false;
    }
    if (stringMember(key, "use", use) && use != "sig") continue;
    stringMember(key, "kid", kid);
    Jwk jwk;
    jwk.kid = std::string(kid);
    if (kty == "oct") {
      jwk.alg = Alg::HS256;
      if (!b64Member(key, "k", jwk.secret)) {
        error = where + ": an \"oct\" key needs \"k\" (base64url)";
        return false;
      }
    } else if (kty == "RSA") {
      std::string n;
      std::string e;
      jwk.alg = Alg::RS256;
      if (!b64Member(key, "n", n) || !b64Member(key, "e", e) || !(jwk.pkey = rsaKey(n, e))) {
        error = where + ": an \"RSA\" key needs valid \"n\" and \"e\"";
        return false;
      }
      if (n.size() < 256) {
        error = where + ": RSA keys shorter than 2048 bits are refused";
        return false;
      }
    } else if (kty == "EC") {
      std::string_view crv;
      if (!stringMember(key, "crv", crv) || crv != "P-256") continue;  // ES256 only
      std::string x;
      std::string y;
      jwk.alg = Alg::ES256;
      if (!b64Member(key, "x", x) || !b64Member(key, "y", y) || !(jwk.pkey = ecKey(x, y))) {
        error = where + ": an \"EC\" key needs valid P-256 \"x\" and \"y\"";
        return false;
      }
    } else {
      continue;
    }
    out.keys.push_back(std::move(jwk));
  }
  if (!array.valid()) {
    error = "malformed \"keys\" array";
    return false;
  }
  return true;
}

}  // namespace gw::filters::auth_jwt
