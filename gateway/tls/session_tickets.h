#pragma once
// Session tickets that every worker can read, with keys that rotate on a schedule and
// no shared mutable state: one random master secret per process (made once, then
// immutable), and the key for rotation period N is derived from it as
// HMAC-SHA256(master, label | period length | N). Any worker derives the same key, so a
// ticket issued by one worker resumes on another. A ticket is accepted during its own
// period and the next one, never after; every resumption gets a fresh ticket.
// Restarting the process invalidates every ticket (a new master secret).

#include <openssl/ssl.h>

#include <cstdint>

namespace gw::tls {

// OpenSSL 3's ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb). The rotation
// period comes from the ServerContext set as the SSL_CTX's app data.
int onTicketKey(SSL* ssl, unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* cipher,
                EVP_MAC_CTX* mac, int encrypt);

// For tests: the key name a ticket gets in rotation period `period` of `rotation_ms`.
void ticketKeyName(uint64_t rotation_ms, uint64_t period, unsigned char out[16]);

}  // namespace gw::tls
