#include "filters/auth_jwt/auth_jwt.h"

#include <ctime>
#include <fstream>
#include <sstream>

#include "filters/auth_jwt/json_scan.h"
#include "filters/auth_jwt/jwt.h"
#include "gateway/filter/fields.h"
#include "gateway/filter/unauthorized.h"
#include "gateway/http/header.h"

namespace gw::filters::auth_jwt {
namespace {

struct ClaimHeader {
  std::string claim;
  std::string header;
};

struct Config {
  Jwks jwks;
  Expectations expect;
  std::vector<ClaimHeader> claims;
};

// A claim's value as a header value: strings without escapes, numbers, booleans.
bool headerValue(const JsonValue& v, std::string_view& out) {
  switch (v.type) {
    case JsonValue::Type::String:
      if (v.raw.find('\\') != std::string_view::npos || !filter::isFieldValue(v.raw)) return false;
      out = v.raw;
      return true;
    case JsonValue::Type::Number:
    case JsonValue::Type::True:
    case JsonValue::Type::False:
      out = v.raw;
      return true;
    default:
      return false;
  }
}

class AuthJwt final : public filter::Filter {
 public:
  explicit AuthJwt(const Config& config) : config_(config) {}

  filter::Status onRequestHeaders(filter::Context& ctx) override {
    for (const ClaimHeader& c : config_.claims) ctx.request_headers.remove(c.header);
    std::string_view auth;
    if (!ctx.request_headers.find(ctx.request.head, "authorization", auth)) {
      return refuse(ctx, "missing bearer token", false);
    }
    auth = http::trimOws(auth);
    if (auth.size() < 7 || !http::equalsIgnoreCase(auth.substr(0, 7), "bearer ")) {
      return refuse(ctx, "missing bearer token", false);
    }
    std::string_view token = http::trimOws(auth.substr(7));
    std::string_view claims;
    JwtError error = verifyJwt(token, config_.jwks, config_.expect,
                               static_cast<int64_t>(std::time(nullptr)), ctx.arena(), claims);
    if (error != JwtError::None) return refuse(ctx, describe(error), true);
    JsonObject payload(claims);
    for (const ClaimHeader& c : config_.claims) {
      JsonValue v;
      std::string_view value;
      if (payload.find(c.claim, v) && headerValue(v, value)) {
        ctx.request_headers.set(c.header, value);
      }
    }
    return filter::Status::Continue;
  }

 private:
  static filter::Status refuse(filter::Context& ctx, const char* message, bool invalid) {
    // RFC 6750 §3: no error code when the request had no token at all.
    return filter::unauthorized(
        ctx,
        invalid ? "Bearer realm=\"gateway\", error=\"invalid_token\"" : "Bearer realm=\"gateway\"",
        message);
  }

  const Config& config_;
};

class Factory final : public filter::FilterFactory {
 public:
  explicit Factory(Config config) : config_(std::move(config)) {}
  filter::Filter* create(filter::Context& ctx) const override {
    return ctx.arena().make<AuthJwt>(config_);
  }

 private:
  Config config_;
};

}  // namespace

std::vector<std::string_view> keys() {
  return {"jwks_file", "issuer", "audience", "leeway", "require_exp", "claims_to_headers"};
}

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table) {
  Config config;
  std::string path;
  if (!table.getString("jwks_file", path)) {
    if (table.find("jwks_file") == nullptr) table.errorHere("\"jwks_file\" is required");
    return nullptr;
  }
  std::ifstream in(table.resolvePath(path));
  if (!in) {
    table.error(*table.find("jwks_file"),
                "cannot read jwks_file " + filter::quote(table.resolvePath(path)));
    return nullptr;
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string error;
  if (!parseJwks(text.str(), config.jwks, error)) {
    table.error(*table.find("jwks_file"), "jwks_file " + filter::quote(path) + ": " + error);
    return nullptr;
  }
  if (config.jwks.keys.empty()) {
    table.error(*table.find("jwks_file"),
                "jwks_file " + filter::quote(path) + " has no usable key (oct, RSA, EC P-256)");
    return nullptr;
  }
  table.getString("issuer", config.expect.issuer);
  table.getString("audience", config.expect.audience);
  uint64_t leeway_ms = 30'000;
  if (table.getDuration("leeway", 0, 3'600'000, leeway_ms)) {
    config.expect.leeway_s = static_cast<int64_t>(leeway_ms / 1000);
  }
  table.getBool("require_exp", config.expect.require_exp);
  std::vector<filter::ConfigTable::Entry> claims;
  if (table.getStringTable("claims_to_headers", claims)) {
    for (const auto& c : claims) {
      if (!filter::isToken(c.value) || filter::isReservedField(c.value)) {
        table.error(*c.node, filter::quote(c.value) + " is not a header name a filter may set");
        continue;
      }
      config.claims.push_back({c.key, c.value});
    }
  }
  if (table.errorCount() != 0) return nullptr;
  return std::make_shared<Factory>(std::move(config));
}

}  // namespace gw::filters::auth_jwt
