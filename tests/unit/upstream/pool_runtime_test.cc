#define CATCH_CONFIG_MAIN
// PoolRuntime: health filtering, panic mode, passive outlier ejection and its cap,
// circuit breakers, the retry budget, retries avoiding tried endpoints, slow start.
#include <uv.h>

#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <string>

#include "gateway/config/loader.h"
#include "gateway/upstream/registry.h"

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

}  // namespace
}  // namespace gw::upstream
