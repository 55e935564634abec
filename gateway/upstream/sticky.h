#pragma once
// Sticky sessions by cookie: the opaque id a pool gives each endpoint, and the cookie's
// attributes. Computed when a pool is configured, never per request.
//
// The id is HMAC-SHA256(secret, endpoint key), first 8 bytes in hex: stable for the
// endpoint while the secret stays, and it reveals nothing about the address. Without a
// configured secret, one random secret per process is used (the same on every worker).

#include <string>
#include <string_view>

#include "gateway/config/resilience.h"

namespace gw::upstream {

// 16 lower-case hex digits. `secret` empty: the process's random secret.
std::string stickyId(std::string_view secret, std::string_view endpoint_key);

// What follows "NAME=ID" in Set-Cookie: "; Path=/; Max-Age=3600; Secure; HttpOnly".
std::string stickyCookieAttributes(const config::Sticky& sticky);

}  // namespace gw::upstream
