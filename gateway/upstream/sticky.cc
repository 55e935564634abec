#include "gateway/upstream/sticky.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstdlib>

namespace gw::upstream {
namespace {

std::string_view processSecret() {
  // Made once, before any worker configures a pool with sticky on (static init is
  // thread-safe), so every worker derives the same ids.
  static const std::string kSecret = [] {
    unsigned char bytes[32];
    if (RAND_bytes(bytes, sizeof bytes) != 1) std::abort();
    return std::string(reinterpret_cast<const char*>(bytes), sizeof bytes);
  }();
  return kSecret;
}

}  // namespace

std::string stickyId(std::string_view secret, std::string_view endpoint_key) {
  if (secret.empty()) secret = processSecret();
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(endpoint_key.data()), endpoint_key.size(), mac,
       &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < 8 && i < length; ++i) {
    out += kHex[mac[i] >> 4];
    out += kHex[mac[i] & 15];
  }
  return out;
}

std::string stickyCookieAttributes(const config::Sticky& sticky) {
  std::string out = "; Path=" + sticky.path;
  if (!sticky.domain.empty()) out += "; Domain=" + sticky.domain;
  if (sticky.ttl_ms != 0) out += "; Max-Age=" + std::to_string((sticky.ttl_ms + 999) / 1000);
  if (sticky.secure) out += "; Secure";
  if (sticky.http_only) out += "; HttpOnly";
  if (!sticky.same_site.empty()) out += "; SameSite=" + sticky.same_site;
  return out;
}

}  // namespace gw::upstream
