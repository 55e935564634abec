// [services.NAME] keys for load balancing, health checks, outlier ejection, circuit
// breakers and retries (see resilience.h for what each governs).
#include <cctype>
#include <charconv>

#include "gateway/config/sections.h"

namespace gw::config::detail {
namespace {

// Kept in step with gateway/upstream/load_balancer.cc (config sits below upstream).
const std::vector<std::string> kPolicies = {"round_robin", "weighted_round_robin", "least_request",
                                            "random", "consistent_hash"};

void readHashKey(TableReader& service, HashKey& out) {
  std::string text;
  if (!service.getString("hash_key", text)) return;
  auto bad = [&](const std::string& why) {
    service.diag().error(*service.find("hash_key"), "hash_key " + quoted(text) + ": " + why);
  };
  if (text == "client_ip") {
    out.source = HashKey::Source::ClientIp;
  } else if (text == "path") {
    out.source = HashKey::Source::Path;
  } else if (text.rfind("header:", 0) == 0 || text.rfind("cookie:", 0) == 0) {
    bool header = text[0] == 'h';
    out.source = header ? HashKey::Source::Header : HashKey::Source::Cookie;
    out.name = text.substr(7);
    if (out.name.empty()) return bad("needs a name after the colon");
    if (header) {
      for (char& c : out.name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  } else {
    bad("must be \"client_ip\", \"path\", \"header:NAME\" or \"cookie:NAME\"");
  }
}

// RFC 9110 tchar: what a cookie name may be made of (RFC 6265 §4.1.1).
bool isToken(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!std::isalnum(static_cast<unsigned char>(c)) &&
        std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// `sticky = true` (the defaults) or a table.
void readSticky(TableReader& service, const std::string& name, Sticky& out) {
  Diagnostics& diag = service.diag();
  const toml::node* node = service.find("sticky");
  if (node == nullptr) return;
  if (const auto* flag = node->as_boolean()) {
    out.enabled = flag->get();
    return;
  }
  const toml::table* table = node->as_table();
  if (table == nullptr) {
    diag.error(*node,
               "\"sticky\" must be true or a table { cookie, ttl, path, domain, secure, "
               "http_only, same_site, secret }");
    return;
  }
  out.enabled = true;
  TableReader t(diag, *table, "in [services." + name + "] sticky",
                {"cookie", "ttl", "path", "domain", "secure", "http_only", "same_site", "secret"});
  if (t.getString("cookie", out.cookie) && !isToken(out.cookie)) {
    diag.error(*t.find("cookie"), "sticky cookie " + quoted(out.cookie) +
                                      " must be a token (letters, digits, !#$%&'*+-.^_`|~)");
  }
  t.getDuration("ttl", 1000, out.ttl_ms);
  if (t.getString("path", out.path)) {
    bool ok = !out.path.empty() && out.path[0] == '/';
    for (char c : out.path) ok = ok && c > ' ' && c != ';' && c != 0x7f;
    if (!ok) {
      diag.error(*t.find("path"),
                 "sticky path must start with '/' and hold no spaces, ';' or controls");
    }
  }
  if (t.getString("domain", out.domain)) {
    bool ok = !out.domain.empty();
    for (char c : out.domain) {
      ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.');
    }
    if (!ok) {
      diag.error(*t.find("domain"), "sticky domain " + quoted(out.domain) + " is not a host name");
    }
  }
  t.getBool("secure", out.secure);
  t.getBool("http_only", out.http_only);
  std::string same_site;
  if (t.getString("same_site", same_site)) {
    std::string lower;
    for (char c : same_site) {
      lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (lower == "strict" || lower == "lax" || lower == "none") {
      out.same_site = lower == "strict" ? "Strict" : lower == "lax" ? "Lax" : "None";
    } else {
      diag.error(*t.find("same_site"), "sticky same_site must be \"Strict\", \"Lax\" or \"None\"");
    }
    // Browsers drop SameSite=None cookies that are not Secure.
    if (out.same_site == "None" && !out.secure) {
      diag.error(*t.find("same_site"), "sticky same_site = \"None\" needs secure = true");
    }
  }
  if (t.getString("secret", out.secret) && out.secret.size() < 16) {
    diag.error(*t.find("secret"), "sticky secret must be at least 16 characters");
  }
}

void readHealthCheck(Diagnostics& diag, const std::string& service, const toml::table& table,
                     HealthCheck& out) {
  TableReader t(
      diag, table, "in [services." + service + "] health_check",
      {"path", "host", "expected_status", "interval", "timeout", "jitter", "healthy", "unhealthy"});
  out.enabled = true;
  if (t.getString("path", out.path) && (out.path.empty() || out.path[0] != '/')) {
    diag.error(*t.find("path"), "health_check path must start with '/'");
  }
  if (t.getString("host", out.host)) {
    for (char c : out.host) {
      if (c <= ' ' || c == 0x7f) {
        diag.error(*t.find("host"), "health_check host must not contain spaces or controls");
        break;
      }
    }
  }
  std::string status;
  if (t.getString("expected_status", status)) {
    // "200" or "200-399".
    uint32_t lo = 0, hi = 0;
    size_t dash = status.find('-');
    std::string a = status.substr(0, dash);
    std::string b = dash == std::string::npos ? a : status.substr(dash + 1);
    auto num = [](const std::string& s, uint32_t& v) {
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      return ec == std::errc() && p == s.data() + s.size() && !s.empty();
    };
    if (!num(a, lo) || !num(b, hi) || lo < 100 || hi > 599 || lo > hi) {
      diag.error(*t.find("expected_status"),
                 "health_check expected_status " + quoted(status) +
                     " must be a status or a range within 100-599, e.g. \"200-399\"");
    } else {
      out.expected_min = lo;
      out.expected_max = hi;
    }
  }
  t.getDuration("interval", 10, out.interval_ms);
  t.getDuration("timeout", 1, out.timeout_ms);
  t.getDuration("jitter", 0, out.jitter_ms);
  t.getUint32("healthy", 1, 100, out.healthy);
  t.getUint32("unhealthy", 1, 100, out.unhealthy);
  if (out.timeout_ms > out.interval_ms && t.find("timeout") != nullptr) {
    diag.error(*t.find("timeout"), "health_check timeout must not exceed its interval");
  }
}

void readOutlier(Diagnostics& diag, const std::string& service, const toml::table& table,
                 Outlier& out) {
  TableReader t(diag, table, "in [services." + service + "] outlier",
                {"consecutive_errors", "base_ejection_time", "max_ejection_time",
                 "max_ejection_percent", "latency_factor", "latency_min_requests"});
  t.getUint32("consecutive_errors", 0, 1'000'000, out.consecutive_errors);
  t.getDuration("base_ejection_time", 1, out.base_ejection_time_ms);
  t.getDuration("max_ejection_time", 1, out.max_ejection_time_ms);
  t.getUint32("max_ejection_percent", 0, 100, out.max_ejection_percent);
  t.getUint32("latency_factor", 0, 1000, out.latency_factor);
  t.getUint32("latency_min_requests", 1, 1'000'000, out.latency_min_requests);
  if (out.max_ejection_time_ms < out.base_ejection_time_ms) {
    const toml::node* at = t.find("max_ejection_time");
    diag.error(at != nullptr ? *at : static_cast<const toml::node&>(table),
               "outlier max_ejection_time must be at least base_ejection_time");
  }
}

void readCircuitBreaker(Diagnostics& diag, const std::string& service, const toml::table& table,
                        CircuitBreaker& out) {
  TableReader t(diag, table, "in [services." + service + "] circuit_breaker",
                {"max_connections", "max_pending", "max_requests"});
  t.getUint32("max_connections", 1, 1'000'000, out.max_connections);
  t.getUint32("max_pending", 1, 1'000'000, out.max_pending);
  t.getUint32("max_requests", 1, 1'000'000, out.max_requests);
}

void readRetry(Diagnostics& diag, const std::string& service, const toml::table& table,
               Retry& out) {
  TableReader t(diag, table, "in [services." + service + "] retry",
                {"attempts", "on", "non_idempotent", "per_try_timeout", "budget_percent",
                 "min_retry_concurrency", "backoff_base", "backoff_max"});
  t.getUint32("attempts", 0, 10, out.attempts);
  std::vector<std::pair<std::string, const toml::node*>> on;
  if (t.getStringArray("on", on)) {
    out.on_connect_failure = out.on_reset = false;
    out.on_status.clear();
    for (const auto& [text, node] : on) {
      uint32_t status = 0;
      auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), status);
      if (text == "connect_failure") {
        out.on_connect_failure = true;
      } else if (text == "reset") {
        out.on_reset = true;
      } else if (ec == std::errc() && p == text.data() + text.size() && status >= 500 &&
                 status <= 599) {
        out.on_status.push_back(status);
      } else {
        diag.error(*node, "retry on " + quoted(text) +
                              ": use \"connect_failure\", \"reset\" or a 5xx status like \"503\"");
      }
    }
  }
  t.getBool("non_idempotent", out.non_idempotent);
  t.getDuration("per_try_timeout", 1, out.per_try_timeout_ms);
  t.getUint32("budget_percent", 0, 100, out.budget_percent);
  t.getUint32("min_retry_concurrency", 0, 1'000'000, out.min_retry_concurrency);
  t.getDuration("backoff_base", 0, out.backoff_base_ms);
  t.getDuration("backoff_max", 0, out.backoff_max_ms);
}

}  // namespace

const std::vector<std::string_view>& balancingKeys() {
  static const std::vector<std::string_view> kKeys = {
      "hash_key",     "sticky",  "dns_refresh",     "slow_start", "panic_threshold",
      "health_check", "outlier", "circuit_breaker", "retry"};
  return kKeys;
}

void readBalancing(TableReader& service, const std::string& name, Service& out) {
  Diagnostics& diag = service.diag();
  if (service.getString("lb", out.lb)) {
    bool known = false;
    for (const std::string& p : kPolicies) known = known || p == out.lb;
    if (!known) {
      diag.error(*service.find("lb"), "lb " + quoted(out.lb) + " is not supported (supported: " +
                                          joined(kPolicies) + ")");
    }
  }
  Balancing& b = out.balancing;
  readHashKey(service, b.hash_key);
  readSticky(service, name, b.sticky);
  service.getDuration("slow_start", 0, b.slow_start_ms);
  service.getUint32("panic_threshold", 0, 100, b.panic_threshold);
  if (service.getDuration("dns_refresh", 0, b.dns_refresh_ms) && b.dns_refresh_ms != 0 &&
      b.dns_refresh_ms < 100) {
    diag.error(*service.find("dns_refresh"), "dns_refresh must be \"0s\" (off) or at least 100ms");
  }
  if (const toml::table* t = service.getTable("health_check")) {
    readHealthCheck(diag, name, *t, b.health_check);
  }
  if (const toml::table* t = service.getTable("outlier")) readOutlier(diag, name, *t, b.outlier);
  if (const toml::table* t = service.getTable("circuit_breaker")) {
    readCircuitBreaker(diag, name, *t, b.circuit_breaker);
  }
  if (const toml::table* t = service.getTable("retry")) readRetry(diag, name, *t, b.retry);
}

}  // namespace gw::config::detail
