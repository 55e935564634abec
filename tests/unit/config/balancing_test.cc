#define CATCH_CONFIG_MAIN
// [services.NAME] load-balancing and resilience keys: defaults, values, errors.
#include <catch2/catch.hpp>
#include <string>

#include "gateway/config/loader.h"

namespace gw::config {
namespace {

const std::string kHead = "[[listeners]]\nlisten = \"127.0.0.1:0\"\n[services.a]\n";
const std::string kPool = "\n[services.a.pools.p]\nendpoints = [\"127.0.0.1:1\"]\n";

std::string allErrors(const LoadResult& result) {
  std::string out;
  for (const ConfigError& e : result.errors) out += e.toString() + "\n";
  return out;
}

const Service& load(const std::string& service_lines, LoadResult& keep) {
  keep = loadConfigString(kHead + service_lines + kPool, "t.toml");
  INFO(allErrors(keep));
  REQUIRE(keep.ok());
  return keep.snapshot->services.at("a");
}

std::string onlyError(const std::string& text) {
  LoadResult result = loadConfigString(text, "t.toml");
  INFO(allErrors(result));
  REQUIRE_FALSE(result.ok());
  REQUIRE(result.errors.size() == 1);
  return result.errors[0].toString();
}

TEST_CASE("balancing defaults are safe") {
  LoadResult r;
  const Service& s = load("", r);
  CHECK(s.lb == "round_robin");
  const Balancing& b = s.balancing;
  CHECK_FALSE(b.health_check.enabled);
  CHECK(b.panic_threshold == 0);
  CHECK(b.slow_start_ms == 0);
  CHECK(b.outlier.consecutive_errors == 5);
  CHECK(b.retry.attempts == 0);
  CHECK(b.circuit_breaker.max_requests == 100'000);
  CHECK(s.activePool().endpoints[0].weight == 1);
}

TEST_CASE("every balancing key is read") {
  LoadResult r;
  const Service& s = load(R"(lb = "consistent_hash"
hash_key = "header:X-User"
slow_start = "10s"
panic_threshold = 50
health_check = { path = "/hz", host = "h.local", expected_status = "200-204", interval = "2s", timeout = "500ms", jitter = "100ms", healthy = 1, unhealthy = 2 }
outlier = { consecutive_errors = 3, base_ejection_time = "1s", max_ejection_time = "10s", max_ejection_percent = 50 }
circuit_breaker = { max_connections = 10, max_pending = 5, max_requests = 7 }
retry = { attempts = 2, on = ["reset", "503"], non_idempotent = true, per_try_timeout = "300ms", budget_percent = 30, min_retry_concurrency = 1, backoff_base = "10ms", backoff_max = "100ms" }
)",
                          r);
  const Balancing& b = s.balancing;
  CHECK(s.lb == "consistent_hash");
  CHECK(b.hash_key.source == HashKey::Source::Header);
  CHECK(b.hash_key.name == "x-user");
  CHECK(b.slow_start_ms == 10'000);
  CHECK(b.panic_threshold == 50);
  CHECK(b.health_check.enabled);
  CHECK(b.health_check.path == "/hz");
  CHECK(b.health_check.host == "h.local");
  CHECK(b.health_check.expected_min == 200);
  CHECK(b.health_check.expected_max == 204);
  CHECK(b.health_check.interval_ms == 2000);
  CHECK(b.health_check.timeout_ms == 500);
  CHECK(b.health_check.jitter_ms == 100);
  CHECK(b.health_check.healthy == 1);
  CHECK(b.health_check.unhealthy == 2);
  CHECK(b.outlier.consecutive_errors == 3);
  CHECK(b.outlier.base_ejection_time_ms == 1000);
  CHECK(b.outlier.max_ejection_time_ms == 10'000);
  CHECK(b.outlier.max_ejection_percent == 50);
  CHECK(b.circuit_breaker.max_connections == 10);
  CHECK(b.circuit_breaker.max_pending == 5);
  CHECK(b.circuit_breaker.max_requests == 7);
  CHECK(b.retry.attempts == 2);
  CHECK_FALSE(b.retry.on_connect_failure);
  CHECK(b.retry.on_reset);
  CHECK(b.retry.on_status == std::vector<uint32_t>{503});
  CHECK(b.retry.non_idempotent);
  CHECK(b.retry.per_try_timeout_ms == 300);
  CHECK(b.retry.budget_percent == 30);
  CHECK(b.retry.min_retry_concurrency == 1);
  CHECK(b.retry.backoff_base_ms == 10);
  CHECK(b.retry.backoff_max_ms == 100);
}

TEST_CASE("endpoints may carry a weight") {
  LoadResult r = loadConfigString(kHead + R"([services.a.pools.p]
endpoints = ["127.0.0.1:1", { address = "127.0.0.1:2", weight = 3 }]
)",
                                  "t.toml");
  INFO(allErrors(r));
  REQUIRE(r.ok());
  const Pool& p = r.snapshot->services.at("a").activePool();
  REQUIRE(p.endpoints.size() == 2);
  CHECK(p.endpoints[0].weight == 1);
  CHECK(p.endpoints[1].key == "127.0.0.1:2");
  CHECK(p.endpoints[1].weight == 3);
}

TEST_CASE("balancing errors name the place") {
  CHECK(onlyError(kHead + "hash_key = \"query:x\"\n" + kPool) ==
        "t.toml:4:12: hash_key \"query:x\": must be \"client_ip\", \"path\", \"header:NAME\" or "
        "\"cookie:NAME\"");
  CHECK(onlyError(kHead + "panic_threshold = 101\n" + kPool) ==
        "t.toml:4:19: \"panic_threshold\" must be between 0 and 100 (got 101)");
  CHECK(onlyError(kHead + "health_check = { path = \"hz\" }\n" + kPool) ==
        "t.toml:4:25: health_check path must start with '/'");
  CHECK(onlyError(kHead + "health_check = { expected_status = \"300-200\" }\n" + kPool) ==
        "t.toml:4:36: health_check expected_status \"300-200\" must be a status or a range "
        "within 100-599, e.g. \"200-399\"");
  CHECK(onlyError(kHead + "health_check = { intervall = \"1s\" }\n" + kPool) ==
        "t.toml:4:18: unknown key \"intervall\" in [services.a] health_check (did you mean "
        "\"interval\"?)");
  CHECK(onlyError(kHead + "retry = { on = [\"404\"] }\n" + kPool) ==
        "t.toml:4:17: retry on \"404\": use \"connect_failure\", \"reset\" or a 5xx status "
        "like \"503\"");
  CHECK(onlyError(kHead + "retry = { attempts = 11 }\n" + kPool) ==
        "t.toml:4:22: \"attempts\" must be between 0 and 10 (got 11)");
  CHECK(onlyError(kHead + "circuit_breaker = { max_requests = 0 }\n" + kPool) ==
        "t.toml:4:36: \"max_requests\" must be between 1 and 1000000 (got 0)");
  CHECK(onlyError(
            kHead + "outlier = { base_ejection_time = \"10s\", max_ejection_time = \"1s\" }\n" +
            kPool) == "t.toml:4:61: outlier max_ejection_time must be at least base_ejection_time");
  CHECK(onlyError(kHead + "[services.a.pools.p]\nendpoints = [{ address = \"127.0.0.1:2\", "
                          "weight = 0 }]\n") ==
        "t.toml:5:50: \"weight\" must be between 1 and 1000 (got 0)");
  CHECK(onlyError(kHead + "[services.a.pools.p]\nendpoints = [{ weight = 2 }]\n") ==
        "t.toml:5:14: endpoint table needs address = \"host:port\"");
}

TEST_CASE("sticky: true takes the defaults, a table sets each key") {
  LoadResult r;
  const Sticky& off = load("", r).balancing.sticky;
  CHECK_FALSE(off.enabled);
  const Sticky& on = load("sticky = true", r).balancing.sticky;
  CHECK(on.enabled);
  CHECK(on.cookie == "GW_STICKY");
  CHECK(on.ttl_ms == 0);
  CHECK(on.path == "/");
  CHECK(on.domain.empty());
  CHECK_FALSE(on.secure);
  CHECK(on.http_only);
  CHECK(on.same_site.empty());
  CHECK(on.secret.empty());
  CHECK_FALSE(load("sticky = false", r).balancing.sticky.enabled);
  const Sticky& s =
      load(
          "sticky = { cookie = \"srv\", ttl = \"1h\", path = \"/app\", domain = \"example.com\", "
          "secure = true, http_only = false, same_site = \"none\", secret = \"0123456789abcdef\" }",
          r)
          .balancing.sticky;
  CHECK(s.enabled);
  CHECK(s.cookie == "srv");
  CHECK(s.ttl_ms == 3'600'000);
  CHECK(s.path == "/app");
  CHECK(s.domain == "example.com");
  CHECK(s.secure);
  CHECK_FALSE(s.http_only);
  CHECK(s.same_site == "None");
  CHECK(s.secret == "0123456789abcdef");
}

TEST_CASE("sticky errors name the place") {
  CHECK(onlyError(kHead + "sticky = \"yes\"\n" + kPool) ==
        "t.toml:4:10: \"sticky\" must be true or a table { cookie, ttl, path, domain, secure, "
        "http_only, same_site, secret }");
  CHECK(onlyError(kHead + "sticky = { cooky = \"a\" }\n" + kPool) ==
        "t.toml:4:12: unknown key \"cooky\" in [services.a] sticky (did you mean \"cookie\"?)");
  CHECK(onlyError(kHead + "sticky = { cookie = \"a b\" }\n" + kPool) ==
        "t.toml:4:21: sticky cookie \"a b\" must be a token (letters, digits, "
        "!#$%&'*+-.^_`|~)");
  CHECK(onlyError(kHead + "sticky = { ttl = \"0s\" }\n" + kPool) ==
        "t.toml:4:18: \"ttl\" must be at least 1000ms");
  CHECK(onlyError(kHead + "sticky = { path = \"app\" }\n" + kPool) ==
        "t.toml:4:19: sticky path must start with '/' and hold no spaces, ';' or controls");
  CHECK(onlyError(kHead + "sticky = { path = \"/a;b\" }\n" + kPool) ==
        "t.toml:4:19: sticky path must start with '/' and hold no spaces, ';' or controls");
  CHECK(onlyError(kHead + "sticky = { domain = \"a/b\" }\n" + kPool) ==
        "t.toml:4:21: sticky domain \"a/b\" is not a host name");
  CHECK(onlyError(kHead + "sticky = { same_site = \"loose\" }\n" + kPool) ==
        "t.toml:4:24: sticky same_site must be \"Strict\", \"Lax\" or \"None\"");
  CHECK(onlyError(kHead + "sticky = { same_site = \"None\" }\n" + kPool) ==
        "t.toml:4:24: sticky same_site = \"None\" needs secure = true");
  CHECK(onlyError(kHead + "sticky = { secret = \"short\" }\n" + kPool) ==
        "t.toml:4:21: sticky secret must be at least 16 characters");
}

}  // namespace
}  // namespace gw::config
