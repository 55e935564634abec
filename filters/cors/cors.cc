#include "filters/cors/cors.h"

#include "gateway/filter/fields.h"
#include "gateway/http/header.h"

namespace gw::filters::cors {
namespace {

class Cors final : public filter::Filter {
 public:
  explicit Cors(const Policy& policy) : policy_(policy) {}

  filter::Status onRequestHeaders(filter::Context& ctx) override {
    std::string_view origin;
    if (!ctx.request_headers.find(ctx.request.head, "origin", origin)) {
      return filter::Status::Continue;
    }
    std::string_view method;
    bool preflight =
        ctx.request.method == "OPTIONS" &&
        ctx.request_headers.find(ctx.request.head, "access-control-request-method", method);
    bool allowed = policy_.allowsOrigin(origin);
    if (!preflight) {
      if (allowed) origin_ = ctx.arena().copy(origin);  // for the response phase
      return filter::Status::Continue;
    }
    if (!allowed || !policy_.allowsMethod(http::trimOws(method))) {
      ctx.reply.status = 403;
      ctx.reply.message = "CORS preflight refused";
      return filter::Status::Respond;
    }
    origin_ = ctx.arena().copy(origin);
    addOriginHeaders(ctx);
    filter::HeaderEdits& h = ctx.response_headers;
    h.set("Access-Control-Allow-Methods", policy_.methods_joined);
    if (!policy_.headers_joined.empty()) {
      h.set("Access-Control-Allow-Headers", policy_.headers_joined);
    }
    if (!policy_.max_age.empty()) h.set("Access-Control-Max-Age", policy_.max_age);
    ctx.reply.status = 204;
    ctx.reply.custom_body = true;
    return filter::Status::Respond;
  }

  void onResponseHeaders(filter::Context& ctx) override {
    if (origin_.empty()) return;
    addOriginHeaders(ctx);
    if (!policy_.expose_joined.empty()) {
      ctx.response_headers.set("Access-Control-Expose-Headers", policy_.expose_joined);
    }
  }

 private:
  void addOriginHeaders(filter::Context& ctx) {
    filter::HeaderEdits& h = ctx.response_headers;
    // "*" cannot carry credentials (Fetch standard): echo the origin then.
    if (policy_.any_origin && !policy_.credentials) {
      h.set("Access-Control-Allow-Origin", "*");
    } else {
      h.set("Access-Control-Allow-Origin", origin_);
      h.add("Vary", "Origin");
    }
    if (policy_.credentials) h.set("Access-Control-Allow-Credentials", "true");
  }

  const Policy& policy_;
  std::string_view origin_;  // set when the origin is allowed
};

class Factory final : public filter::FilterFactory {
 public:
  explicit Factory(Policy policy) : policy_(std::move(policy)) {}
  filter::Filter* create(filter::Context& ctx) const override {
    return ctx.arena().make<Cors>(policy_);
  }

 private:
  Policy policy_;
};

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

// A list of tokens (methods or header names).
bool readTokens(filter::ConfigTable& table, std::string_view key, bool upper,
                std::vector<std::string>& out) {
  std::vector<std::pair<std::string, const toml::node*>> items;
  if (!table.getStringArray(key, items)) return false;
  for (auto& [item, node] : items) {
    if (!filter::isToken(item)) {
      table.error(*node, filter::quote(item) + " is not a valid name");
      continue;
    }
    if (upper) {
      for (char& c : item) c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
    }
    out.push_back(item);
  }
  return true;
}

bool isOrigin(std::string_view o) {
  // scheme "://" host [":" port], no path: what browsers send in Origin.
  size_t sep = o.find("://");
  if (sep == std::string_view::npos || sep == 0 || sep + 3 == o.size()) return false;
  for (char c : o.substr(0, sep)) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '-' || c == '.';
    if (!ok) return false;
  }
  for (char c : o.substr(sep + 3)) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '/' || c == '?' || c == '#') return false;
  }
  return true;
}

}  // namespace

bool Policy::allowsOrigin(std::string_view origin) const {
  if (any_origin) return true;
  for (const std::string& o : origins) {
    if (o == origin) return true;
  }
  return false;
}

bool Policy::allowsMethod(std::string_view method) const {
  for (const std::string& m : methods) {
    if (m == method) return true;
  }
  return false;
}

std::vector<std::string_view> keys() {
  return {"allow_origins",  "allow_methods",     "allow_headers",
          "expose_headers", "allow_credentials", "max_age"};
}

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table) {
  Policy policy;
  std::vector<std::pair<std::string, const toml::node*>> origins;
  if (table.getStringArray("allow_origins", origins)) {
    for (const auto& [origin, node] : origins) {
      if (origin == "*") {
        policy.any_origin = true;
      } else if (isOrigin(origin)) {
        policy.origins.push_back(origin);
      } else {
        table.error(*node, filter::quote(origin) +
                               " is not an origin like \"https://app.example.com\" or \"*\"");
      }
    }
  } else if (table.find("allow_origins") == nullptr) {
    table.errorHere("\"allow_origins\" is required (a list of origins, or [\"*\"])");
  }
  if (!readTokens(table, "allow_methods", true, policy.methods)) {
    policy.methods = {"GET", "HEAD", "POST"};  // the CORS-safelisted methods
  }
  std::vector<std::string> headers;
  readTokens(table, "allow_headers", false, headers);
  std::vector<std::string> expose;
  readTokens(table, "expose_headers", false, expose);
  table.getBool("allow_credentials", policy.credentials);
  uint64_t max_age_ms = 0;
  if (table.getDuration("max_age", 0, 24ull * 3600 * 1000, max_age_ms)) {
    policy.max_age = std::to_string(max_age_ms / 1000);
  }
  if (table.errorCount() != 0) return nullptr;
  policy.methods_joined = join(policy.methods);
  policy.headers_joined = join(headers);
  policy.expose_joined = join(expose);
  return std::make_shared<Factory>(std::move(policy));
}

}  // namespace gw::filters::cors
