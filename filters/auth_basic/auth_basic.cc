#include "filters/auth_basic/auth_basic.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "gateway/filter/fields.h"
#include "gateway/filter/unauthorized.h"
#include "gateway/http/header.h"

namespace gw::filters::auth_basic {
namespace {

constexpr size_t kMaxCredentials = 4096;

struct Config {
  std::vector<User> users;
  std::string challenge;  // WWW-Authenticate value
  std::string user_header = "X-Auth-User";
};

class AuthBasic final : public filter::Filter {
 public:
  explicit AuthBasic(const Config& config) : config_(config) {}

  filter::Status onRequestHeaders(filter::Context& ctx) override {
    ctx.request_headers.remove(config_.user_header);
    std::string_view auth;
    if (!ctx.request_headers.find(ctx.request.head, "authorization", auth)) {
      return refuse(ctx, "missing credentials");
    }
    auth = http::trimOws(auth);
    if (auth.size() < 6 || !http::equalsIgnoreCase(auth.substr(0, 6), "basic ")) {
      return refuse(ctx, "missing credentials");
    }
    std::string_view encoded = http::trimOws(auth.substr(6));
    if (encoded.size() > kMaxCredentials) return refuse(ctx, "invalid credentials");
    char* decoded = static_cast<char*>(ctx.arena().allocate(encoded.size() * 3 / 4 + 3, 1));
    long n = base64Decode(encoded, decoded);
    std::string_view pair = n < 0 ? std::string_view() : std::string_view(decoded, size_t(n));
    size_t colon = pair.find(':');
    if (colon == std::string_view::npos) return refuse(ctx, "invalid credentials");
    const User* user = check(config_.users, pair.substr(0, colon), pair.substr(colon + 1));
    if (user == nullptr) return refuse(ctx, "invalid credentials");
    ctx.request_headers.remove("Authorization");
    ctx.request_headers.set(config_.user_header, user->name);
    return filter::Status::Continue;
  }

 private:
  filter::Status refuse(filter::Context& ctx, std::string_view message) {
    return filter::unauthorized(ctx, config_.challenge, message);
  }
  const Config& config_;
};

class Factory final : public filter::FilterFactory {
 public:
  explicit Factory(Config config) : config_(std::move(config)) {}
  filter::Filter* create(filter::Context& ctx) const override {
    return ctx.arena().make<AuthBasic>(config_);
  }

 private:
  Config config_;
};

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void saltedHash(std::string_view salt, std::string_view password, unsigned char out[32]) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned int len = 0;
  if (ctx == nullptr || EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx, salt.data(), salt.size()) != 1 ||
      EVP_DigestUpdate(ctx, password.data(), password.size()) != 1 ||
      EVP_DigestFinal_ex(ctx, out, &len) != 1) {
    std::fill(out, out + 32, 0);  // matches nothing a real hash would
  }
  EVP_MD_CTX_free(ctx);
}

}  // namespace

long base64Decode(std::string_view in, char* out) {
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return -1;
  long n = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = (c >= 'A' && c <= 'Z')   ? c - 'A'
            : (c >= 'a' && c <= 'z') ? c - 'a' + 26
            : (c >= '0' && c <= '9') ? c - '0' + 52
            : c == '+'               ? 62
            : c == '/'               ? 63
                                     : -1;
    if (v < 0) return -1;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return n;
}

bool parseStored(std::string_view stored, User& out) {
  if (stored.substr(0, 7) != "sha256:") return false;
  std::string_view rest = stored.substr(7);
  size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view hex = rest.substr(colon + 1);
  if (hex.size() != 64) return false;
  for (size_t i = 0; i < 32; ++i) {
    int hi = hexValue(hex[2 * i]);
    int lo = hexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out.hash[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  out.salt = std::string(rest.substr(0, colon));
  return true;
}

const User* check(const std::vector<User>& users, std::string_view name,
                  std::string_view password) {
  const User* found = nullptr;
  for (const User& u : users) {
    if (found == nullptr && u.name == name) found = &u;
  }
  // An unknown user costs the same hash, so timing does not tell which names exist.
  static const User kNobody = [] {
    User u;
    u.salt = "no-such-user";
    u.hash.fill(0);
    return u;
  }();
  const User& against = found != nullptr ? *found : kNobody;
  unsigned char digest[32];
  saltedHash(against.salt, password, digest);
  bool equal = CRYPTO_memcmp(digest, against.hash.data(), sizeof digest) == 0;
  return equal && found != nullptr ? found : nullptr;
}

std::vector<std::string_view> keys() { return {"users", "realm", "user_header"}; }

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table) {
  Config config;
  std::vector<filter::ConfigTable::Entry> users;
  if (table.getStringTable("users", users)) {
    for (const auto& e : users) {
      User user;
      user.name = e.key;
      if (e.key.empty() || e.key.find(':') != std::string::npos || !filter::isFieldValue(e.key)) {
        table.error(*e.node, filter::quote(e.key) + " is not a valid user name (no \":\")");
        continue;
      }
      if (!parseStored(e.value, user)) {
        table.error(*e.node, "the password of " + filter::quote(e.key) +
                                 " must be \"sha256:SALT:HEX\" (see the README for a command "
                                 "that makes one)");
        continue;
      }
      config.users.push_back(std::move(user));
    }
  }
  std::string realm = "gateway";
  if (table.getString("realm", realm) &&
      (!filter::isFieldValue(realm) || realm.find_first_of("\"\\") != std::string::npos)) {
    table.error(*table.find("realm"), "\"realm\" must be printable text without quotes");
  }
  config.challenge = "Basic realm=\"" + realm + "\", charset=\"UTF-8\"";
  if (table.getString("user_header", config.user_header) &&
      (!filter::isToken(config.user_header) || filter::isReservedField(config.user_header))) {
    table.error(*table.find("user_header"), "\"user_header\" must be a header name");
  }
  if (table.errorCount() != 0) return nullptr;
  if (config.users.empty()) {
    table.errorHere("\"users\" is required: { name = \"sha256:SALT:HEX\" }");
    return nullptr;
  }
  return std::make_shared<Factory>(std::move(config));
}

}  // namespace gw::filters::auth_basic
