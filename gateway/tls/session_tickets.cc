#include "gateway/tls/session_tickets.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <cstring>
#include <ctime>

#include "gateway/tls/context.h"

namespace gw::tls {
namespace {

struct Master {
  unsigned char secret[32];
  Master() {
    // Without randomness tickets would be forgeable: refuse to run.
    if (RAND_bytes(secret, sizeof secret) != 1) std::abort();
  }
};

const Master& master() {
  static const Master m;  // made once (thread-safe static init), read-only afterwards
  return m;
}

void derive(char label, uint64_t rotation_ms, uint64_t period, unsigned char out[32]) {
  unsigned char message[17];
  message[0] = static_cast<unsigned char>(label);
  for (int i = 0; i < 8; ++i) {
    message[1 + i] = static_cast<unsigned char>(rotation_ms >> (56 - 8 * i));
    message[9 + i] = static_cast<unsigned char>(period >> (56 - 8 * i));
  }
  unsigned int length = 32;
  HMAC(EVP_sha256(), master().secret, sizeof master().secret, message, sizeof message, out,
       &length);
}

uint64_t currentPeriod(uint64_t rotation_ms) {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);  // wall clock: every worker agrees on the period
  uint64_t ms =
      static_cast<uint64_t>(now.tv_sec) * 1000 + static_cast<uint64_t>(now.tv_nsec) / 1000000;
  return ms / rotation_ms;
}

uint64_t rotationOf(SSL* ssl) {
  SSL_CTX* ctx = SSL_get_SSL_CTX(ssl);
  auto* server = static_cast<const ServerContext*>(SSL_CTX_get_app_data(ctx));
  uint64_t rotation = server != nullptr ? server->settings().ticket_key_rotation_ms : 0;
  return rotation > 0 ? rotation : 3'600'000;
}

// The derived keys of one period. Each worker thread keeps the last two it used, so a
// handshake derives nothing in the common case (HMAC in OpenSSL 3 fetches its algorithm
// on every call); nothing is shared between threads.
struct PeriodKeys {
  uint64_t rotation_ms = 0;
  uint64_t period = UINT64_MAX;
  unsigned char name[16];
  unsigned char aes[32];
  unsigned char mac[32];
};

const PeriodKeys& keysFor(uint64_t rotation_ms, uint64_t period) {
  thread_local PeriodKeys cache[2];
  thread_local unsigned next = 0;
  for (const PeriodKeys& k : cache) {
    if (k.period == period && k.rotation_ms == rotation_ms) return k;
  }
  PeriodKeys& k = cache[next];
  next ^= 1;
  k.rotation_ms = rotation_ms;
  k.period = period;
  ticketKeyName(rotation_ms, period, k.name);
  derive('a', rotation_ms, period, k.aes);
  derive('m', rotation_ms, period, k.mac);
  return k;
}

const EVP_CIPHER* ticketCipher() {
  static const EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  return cipher;  // fetched once: an implicit fetch per handshake takes a lock
}

bool setKeys(const PeriodKeys& keys, const unsigned char* iv, EVP_CIPHER_CTX* cipher,
             EVP_MAC_CTX* mac, int encrypt) {
  char digest[] = "sha256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(keys.mac),
                                        sizeof keys.mac),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  int ok = encrypt ? EVP_EncryptInit_ex(cipher, ticketCipher(), nullptr, keys.aes, iv)
                   : EVP_DecryptInit_ex(cipher, ticketCipher(), nullptr, keys.aes, iv);
  return ok == 1 && EVP_MAC_CTX_set_params(mac, params) == 1;
}

}  // namespace

void ticketKeyName(uint64_t rotation_ms, uint64_t period, unsigned char out[16]) {
  unsigned char tag[32];
  derive('n', rotation_ms, period, tag);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>(period >> (56 - 8 * i));
  std::memcpy(out + 8, tag, 8);
}

int onTicketKey(SSL* ssl, unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* cipher,
                EVP_MAC_CTX* mac, int encrypt) {
  uint64_t rotation = rotationOf(ssl);
  uint64_t now = currentPeriod(rotation);
  if (encrypt) {
    if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) return -1;
    const PeriodKeys& keys = keysFor(rotation, now);
    std::memcpy(key_name, keys.name, sizeof keys.name);
    return setKeys(keys, iv, cipher, mac, 1) ? 1 : -1;
  }
  uint64_t period = 0;
  for (int i = 0; i < 8; ++i) period = (period << 8) | key_name[i];
  if (period != now && period + 1 != now) return 0;  // unknown or too old: full handshake
  const PeriodKeys& keys = keysFor(rotation, period);
  if (CRYPTO_memcmp(keys.name, key_name, sizeof keys.name) != 0) return 0;
  if (!setKeys(keys, iv, cipher, mac, 0)) return -1;
  // 2: valid, and issue a fresh ticket. Always, not only for the previous period's key:
  // without a new ticket after a TLS 1.3 resumption, an OpenSSL client (wrk) made its
  // next connection a full handshake (measured: half of its connections resumed).
  return 2;
}

}  // namespace gw::tls
