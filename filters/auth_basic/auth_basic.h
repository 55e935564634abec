#pragma once
// auth_basic: HTTP Basic authentication (RFC 7617) against salted hashes.
//
//   { type = "auth_basic", users = { alice = "sha256:SALT:HASH" }, realm = "gateway",
//     user_header = "X-Auth-User" }
//
// The stored form is "sha256:" + SALT + ":" + hex(SHA-256(SALT + PASSWORD)), where SALT
// is any text (16 random bytes in hex is the intent). The README's auth_basic row has a
// one-line shell command that makes one with openssl.
// SHA-256 is fast, so it protects against reading passwords out of the config, not
// against brute force of weak ones: use long random passwords. Comparisons are
// constant-time and an unknown user costs the same hash as a known one. The
// Authorization header does not go upstream; the user name goes in `user_header`.
// Failure: 401 with WWW-Authenticate: Basic realm="...".

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/filter/registry.h"

namespace gw::filters::auth_basic {

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table);
std::vector<std::string_view> keys();

struct User {
  std::string name;
  std::string salt;
  std::array<unsigned char, 32> hash;
};
// Parses "sha256:SALT:HEX"; false when malformed.
bool parseStored(std::string_view stored, User& out);
// The user whose name and password match, or null. Always hashes once.
const User* check(const std::vector<User>& users, std::string_view name, std::string_view password);
// Standard base64 (RFC 4648 §4) into `out` (in.size() * 3 / 4 bytes at most); -1 if invalid.
long base64Decode(std::string_view in, char* out);

}  // namespace gw::filters::auth_basic
