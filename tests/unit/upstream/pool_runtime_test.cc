#define CATCH_CONFIG_MAIN
// PoolRuntime: health filtering, panic mode, passive outlier ejection and its cap,
// circuit breakers, the retry budget, retries avoiding tried endpoints, slow start, the
// decay of the ejection count, sticky-cookie preferences and ids.
#include <uv.h>

#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <string>

#include "gateway/config/loader.h"
#include "gateway/upstream/registry.h"
#include "gateway/upstream/sticky.h"

namespace gw::upstream {
namespace {

// A loop (never run: nothing here does I/O) and a registry applied to `service_lines`
// for service "s" with endpoints 127.0.0.1:1..n.
struct Fixture {
  uv_loop_t loop{};
  std::unique_ptr<LoopContext> ctx;
  std::unique_ptr<UpstreamRegistry> registry;
  std::shared_ptr<const config::Snapshot> snapshot;
  BalancingStats stats;
  PoolRuntime* pool = nullptr;

  Fixture(const std::string& service_lines, int n) {
    uv_loop_init(&loop);
    ctx = std::make_unique<LoopContext>(&loop);
    std::string text = "[[listeners]]\nlisten = \"127.0.0.1:0\"\n[services.s]\n" + service_lines +
                       "\n[services.s.pools.p]\nendpoints = [";
    for (int i = 1; i <= n; ++i) {
      text += (i > 1 ? ", " : "") + std::string("\"127.0.0.1:") + std::to_string(i) + "\"";
    }
    text += "]\n";
    config::LoadResult result = config::loadConfigString(text, "t.toml");
    REQUIRE(result.ok());
    snapshot = result.snapshot;
    registry = std::make_unique<UpstreamRegistry>(*ctx);
    registry->setStats(&stats);
    registry->apply(*snapshot);
    pool = registry->activePool(snapshot->services.at("s"));
    REQUIRE(pool != nullptr);
  }
  ~Fixture() {
    registry.reset();
    ctx->close();
    uv_run(&loop, UV_RUN_DEFAULT);
    ctx.reset();
    uv_loop_close(&loop);
  }
  EndpointRuntime& endpoint(int i) { return *pool->members()[static_cast<size_t>(i)].endpoint; }
  std::map<std::string, int> picks(int n, PickRequest request = {}) {
    std::map<std::string, int> out;
    for (int i = 0; i < n; ++i) {
      int index = pool->pick(request);
      out[index < 0 ? "none" : pool->members()[static_cast<size_t>(index)].endpoint->key()]++;
    }
    return out;
  }
};

TEST_CASE("consecutive failures eject an endpoint until its time is up") {
  Fixture f(
      "outlier = { consecutive_errors = 3, base_ejection_time = \"1s\", "
      "max_ejection_percent = 50 }",
      2);
  EndpointRuntime& a = f.endpoint(0);
  CHECK_FALSE(f.pool->reportFailure(a));
  CHECK_FALSE(f.pool->reportFailure(a));
  f.pool->reportSuccess(a);  // the run is broken: counting starts again
  CHECK_FALSE(f.pool->reportFailure(a));
  CHECK_FALSE(f.pool->reportFailure(a));
  CHECK(f.pool->reportFailure(a));
  CHECK(f.stats.outlier_ejections.get() == 1);
  CHECK(a.outlier.ejected_until_ms == uv_now(&f.loop) + 1000);
  CHECK(f.picks(10) == std::map<std::string, int>{{"127.0.0.1:2", 10}});
  // Time passes (simulated): the endpoint returns at the next pick.
  a.outlier.ejected_until_ms = uv_now(&f.loop);
  CHECK(f.picks(2) == std::map<std::string, int>{{"127.0.0.1:1", 1}, {"127.0.0.1:2", 1}});
  CHECK(f.stats.outlier_returns.get() == 1);
  // A second ejection lasts twice as long.
  for (int i = 0; i < 3; ++i) f.pool->reportFailure(a);
  CHECK(a.outlier.ejected_until_ms == uv_now(&f.loop) + 2000);
}

TEST_CASE("max_ejection_percent caps ejections, but one is always allowed") {
  Fixture f("outlier = { consecutive_errors = 1, max_ejection_percent = 10 }", 4);
  CHECK(f.pool->reportFailure(f.endpoint(0)));        // 0 of 4 ejected: allowed
  CHECK_FALSE(f.pool->reportFailure(f.endpoint(1)));  // 2 of 4 would be 50% > 10%
  CHECK(f.stats.outlier_ejections_skipped.get() == 1);
  CHECK(f.picks(30)["127.0.0.1:1"] == 0);
}

TEST_CASE("consecutive_errors = 0 turns outlier detection off") {
  Fixture f("outlier = { consecutive_errors = 0 }", 2);
  for (int i = 0; i < 100; ++i) CHECK_FALSE(f.pool->reportFailure(f.endpoint(0)));
}

TEST_CASE("no eligible endpoint: -1 without panic mode, everyone with it") {
  {
    Fixture f("outlier = { consecutive_errors = 1, max_ejection_percent = 100 }", 2);
    f.pool->reportFailure(f.endpoint(0));
    f.pool->reportFailure(f.endpoint(1));
    CHECK(f.pool->pick(PickRequest{}) == -1);
    CHECK(f.stats.no_healthy_endpoint.get() == 1);
  }
  {
    Fixture f(
        "panic_threshold = 60\noutlier = { consecutive_errors = 1, "
        "max_ejection_percent = 100 }",
        2);
    f.pool->reportFailure(f.endpoint(0));  // 1 of 2 healthy = 50% < 60%: panic
    auto split = f.picks(10);
    CHECK(split["127.0.0.1:1"] == 5);
    CHECK(split["127.0.0.1:2"] == 5);
    CHECK(f.stats.panic_picks.get() == 10);
  }
}

TEST_CASE("health verdicts from the board filter the candidates") {
  Fixture f("health_check = { path = \"/hz\" }", 3);
  REQUIRE(f.pool->members()[1].health != nullptr);
  f.pool->members()[1].health->healthy.store(false);
  auto split = f.picks(30);
  CHECK(split.count("127.0.0.1:2") == 0);
  CHECK(split["127.0.0.1:1"] == 15);
  f.pool->members()[1].health->healthy.store(true);
  CHECK(f.picks(30)["127.0.0.1:2"] == 10);
  // The same entry is what the control thread writes to.
  CHECK(HealthBoard::process().find("s", "127.0.0.1:2") == f.pool->members()[1].health);
}

TEST_CASE("a retry avoids endpoints already tried while others are eligible") {
  Fixture f("lb = \"random\"", 3);
  PickRequest retry;
  retry.tried = 0b011;
  CHECK(f.picks(20, retry) == std::map<std::string, int>{{"127.0.0.1:3", 20}});
  retry.tried = 0b111;  // all tried: any endpoint will do
  CHECK(f.picks(30, retry).size() == 3);
}

TEST_CASE("circuit breakers and the retry budget") {
  Fixture f(
      "circuit_breaker = { max_requests = 2, max_pending = 1 }\n"
      "retry = { attempts = 1, budget_percent = 50, min_retry_concurrency = 1 }",
      1);
  CHECK(f.pool->admitRequest());
  f.pool->active_requests = 2;
  CHECK_FALSE(f.pool->admitRequest());
  CHECK(f.stats.breaker_max_requests.get() == 1);
  CHECK(f.pool->admitConnection());
  f.pool->pending = 1;
  CHECK_FALSE(f.pool->admitConnection());
  CHECK(f.stats.breaker_max_pending.get() == 1);
  // Budget: max(1, 50% of 10) = 5 retries in flight.
  f.pool->active_requests = 10;
  f.pool->active_retries = 4;
  CHECK(f.pool->admitRetry());
  f.pool->active_retries = 5;
  CHECK_FALSE(f.pool->admitRetry());
  CHECK(f.stats.retry_budget_exhausted.get() == 1);
  f.pool->active_requests = 0;
  f.pool->active_retries = 0;
  CHECK(f.pool->admitRetry());  // min_retry_concurrency
  f.pool->active_retries = f.pool->active_requests = 0;
  f.pool->pending = 0;
}

TEST_CASE("slow start ramps a recovered endpoint's share") {
  Fixture f("lb = \"weighted_round_robin\"\nslow_start = \"10s\"", 2);
  // Endpoint 0 just joined (ramp started now): 10% of its weight at first.
  f.endpoint(0).outlier.ramp_start_ms = uv_now(&f.loop);
  auto early = f.picks(110);
  CHECK(early["127.0.0.1:1"] == 10);
  CHECK(early["127.0.0.1:2"] == 100);
  // Half-way through the window: 50%.
  f.endpoint(0).outlier.ramp_start_ms = uv_now(&f.loop) - 5000;
  auto half = f.picks(150);
  CHECK(half["127.0.0.1:1"] == 50);
  CHECK(half["127.0.0.1:2"] == 100);
}

TEST_CASE("latency outliers: a p99 far above the pool's median p99 is ejected") {
  Fixture f(
      "outlier = { latency_factor = 4, latency_min_requests = 20, "
      "max_ejection_percent = 50 }",
      4);
  // A window is 20 x 4 samples. Endpoints 0-2 answer in ~2ms; endpoint 3 in 2ms
  // mostly but 100ms for 5% of requests: its p99 is 128 (bucket bound) vs a median of 4.
  bool ejected = false;
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 3; ++i) ejected = f.pool->reportLatency(f.endpoint(i), 2) || ejected;
    ejected = f.pool->reportLatency(f.endpoint(3), round % 20 == 7 ? 100 : 2) || ejected;
  }
  CHECK(ejected);
  CHECK(f.endpoint(3).outlier.ejected);
  CHECK_FALSE(f.endpoint(0).outlier.ejected);
  CHECK(f.stats.outlier_ejections.get() == 1);
}

TEST_CASE("latency: a uniformly slow pool ejects nobody; off by default") {
  Fixture f("outlier = { latency_factor = 3, latency_min_requests = 10 }", 3);
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 3; ++i) CHECK_FALSE(f.pool->reportLatency(f.endpoint(i), 300 + i));
  }
  Fixture off("", 2);
  for (int round = 0; round < 200; ++round) {
    CHECK_FALSE(off.pool->reportLatency(off.endpoint(0), 1));
    CHECK_FALSE(off.pool->reportLatency(off.endpoint(1), 5000));
  }
}

TEST_CASE("p99 is the bucket bound holding the 99th percentile") {
  Fixture f("outlier = { latency_factor = 2, latency_min_requests = 1000 }", 1);
  EndpointRuntime& e = f.endpoint(0);
  CHECK(PoolRuntime::p99(e) == 0);
  for (int i = 0; i < 99; ++i) f.pool->reportLatency(e, 0);
  f.pool->reportLatency(e, 50);
  CHECK(PoolRuntime::p99(e) == 1);  // 99 of 100 under 1ms
  f.pool->reportLatency(e, 50);
  CHECK(PoolRuntime::p99(e) == 64);  // 2 of 101 in [32, 64)
}

TEST_CASE("the ejection count decays by one per base_ejection_time back") {
  EndpointRuntime::Outlier s;
  s.ejections = 5;
  s.decay_from_ms = 1000;
  PoolRuntime::decayEjections(s, 1099, 100);  // not a whole interval yet
  CHECK(s.ejections == 5);
  PoolRuntime::decayEjections(s, 1350, 100);  // three intervals
  CHECK(s.ejections == 2);
  CHECK(s.decay_from_ms == 1300);  // the partial interval counts towards the next step
  PoolRuntime::decayEjections(s, 1399, 100);
  CHECK(s.ejections == 2);
  PoolRuntime::decayEjections(s, 1400, 100);
  CHECK(s.ejections == 1);
  s.ejected = true;  // an ejected endpoint keeps its count
  PoolRuntime::decayEjections(s, 9000, 100);
  CHECK(s.ejections == 1);
  s.ejected = false;
  PoolRuntime::decayEjections(s, 9000, 100);  // never below zero
  CHECK(s.ejections == 0);
  PoolRuntime::decayEjections(s, 99000, 100);
  CHECK(s.ejections == 0);
}

TEST_CASE("a flap long ago does not lengthen today's ejection") {
  Fixture f(
      "outlier = { consecutive_errors = 1, base_ejection_time = \"1s\", "
      "max_ejection_time = \"100s\", max_ejection_percent = 50 }",
      2);
  EndpointRuntime& a = f.endpoint(0);
  uint64_t now = uv_now(&f.loop);
  // Three ejections in a row, each returning at once (simulated time: the ejection ends
  // now, so the endpoint is back from now on).
  for (uint64_t k = 1; k <= 3; ++k) {
    REQUIRE(f.pool->reportFailure(a));
    CHECK(a.outlier.ejected_until_ms == now + 1000 * k);
    a.outlier.ejected_until_ms = now;
    f.picks(2);
    CHECK_FALSE(a.outlier.ejected);
  }
  CHECK(a.outlier.ejections == 3);
  // Back for just under one base time: nothing forgotten.
  a.outlier.decay_from_ms = now - 999;
  f.picks(1);
  CHECK(a.outlier.ejections == 3);
  // Back for two base times: two ejections forgotten, so the next lasts 2 x base.
  a.outlier.decay_from_ms = now - 2000;
  f.picks(1);
  CHECK(a.outlier.ejections == 1);
  REQUIRE(f.pool->reportFailure(a));
  CHECK(a.outlier.ejected_until_ms == now + 2000);
  // Back long enough to forget everything: the next ejection is the base time again.
  a.outlier.ejected_until_ms = now;
  f.picks(2);
  a.outlier.decay_from_ms = now - 60'000;
  REQUIRE(f.pool->reportFailure(a));
  CHECK(a.outlier.ejections == 1);
  CHECK(a.outlier.ejected_until_ms == now + 1000);
}

TEST_CASE("sticky ids are opaque, distinct and stable for a secret") {
  const std::string secret = "0123456789abcdef-secret";
  std::string id = stickyId(secret, "10.0.0.1:8080");
  CHECK(id.size() == 16);
  CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(id == stickyId(secret, "10.0.0.1:8080"));
  CHECK(id != stickyId(secret, "10.0.0.2:8080"));
  CHECK(id != stickyId("another-secret-0123", "10.0.0.1:8080"));
  // The process secret: the same id on every call (every worker) of this process.
  CHECK(stickyId("", "10.0.0.1:8080") == stickyId("", "10.0.0.1:8080"));
  CHECK(stickyId("", "10.0.0.1:8080") != id);

  Fixture f("sticky = { secret = \"" + secret + "\" }", 3);
  for (int i = 0; i < 3; ++i) {
    const PoolRuntime::Member& m = f.pool->members()[static_cast<size_t>(i)];
    CHECK(m.sticky_id == stickyId(secret, m.endpoint->key()));
    CHECK(m.sticky_id.find("127.0.0.1") == std::string::npos);
    CHECK(f.pool->stickyMember(m.sticky_id) == i);
  }
  // Forged, truncated or empty ids name nobody.
  CHECK(f.pool->stickyMember("") == -1);
  CHECK(f.pool->stickyMember("127.0.0.1:1") == -1);
  CHECK(f.pool->stickyMember(f.pool->members()[0].sticky_id.substr(0, 15)) == -1);
  CHECK(f.pool->stickyMember(std::string(16, 'f')) == -1);
  CHECK(f.pool->stickyAttributes() == "; Path=/; HttpOnly");

  Fixture off("", 2);
  CHECK(off.pool->members()[0].sticky_id.empty());
  CHECK(off.pool->stickyMember("") == -1);
}

TEST_CASE("sticky cookie attributes follow the config") {
  config::Sticky s;
  s.enabled = true;
  s.ttl_ms = 3'600'000;
  s.path = "/app";
  s.domain = "example.com";
  s.secure = true;
  s.same_site = "Lax";
  CHECK(stickyCookieAttributes(s) ==
        "; Path=/app; Domain=example.com; Max-Age=3600; Secure; HttpOnly; SameSite=Lax");
  s.http_only = false;
  s.ttl_ms = 1500;  // rounded up: never a shorter life than asked
  CHECK(stickyCookieAttributes(s) ==
        "; Path=/app; Domain=example.com; Max-Age=2; Secure; "
        "SameSite=Lax");
}

TEST_CASE("sticky: the cookie's endpoint wins while eligible, with every policy") {
  for (std::string lb :
       {"round_robin", "weighted_round_robin", "least_request", "random", "consistent_hash"}) {
    INFO(lb);
    Fixture f("lb = \"" + lb +
                  "\"\nsticky = true\noutlier = { consecutive_errors = 1, "
                  "max_ejection_percent = 50 }",
              3);
    PickRequest request;
    request.sticky = 1;
    CHECK(f.picks(20, request) == std::map<std::string, int>{{"127.0.0.1:2", 20}});
    // Tried already (a retry): the policy decides, among the others.
    PickRequest retry = request;
    retry.tried = 0b010;
    CHECK(f.picks(20, retry).count("127.0.0.1:2") == 0);
    // Ejected: chosen anew by the policy, never the ejected one.
    REQUIRE(f.pool->reportFailure(f.endpoint(1)));
    auto moved = f.picks(20, request);
    CHECK(moved.count("127.0.0.1:2") == 0);
    CHECK(moved["127.0.0.1:1"] + moved["127.0.0.1:3"] == 20);
    // Back from ejection: the client returns to it.
    f.endpoint(1).outlier.ejected_until_ms = uv_now(&f.loop);
    CHECK(f.picks(5, request) == std::map<std::string, int>{{"127.0.0.1:2", 5}});
  }
}

TEST_CASE("sticky: an endpoint that fails its health check is not kept") {
  Fixture f("sticky = true\nhealth_check = { path = \"/hz\" }", 2);
  PickRequest request;
  request.sticky = 0;
  CHECK(f.picks(4, request) == std::map<std::string, int>{{"127.0.0.1:1", 4}});
  f.pool->members()[0].health->healthy.store(false);
  CHECK(f.picks(4, request) == std::map<std::string, int>{{"127.0.0.1:2", 4}});
  f.pool->members()[0].health->healthy.store(true);
  CHECK(f.picks(4, request) == std::map<std::string, int>{{"127.0.0.1:1", 4}});
}

}  // namespace
}  // namespace gw::upstream
