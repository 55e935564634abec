// The control thread's part of load balancing and health: it runs the active health
// checks and reports endpoint health and balancing decisions to the admin API.
#include "gateway/core/log.h"
#include "gateway/loop/control.h"

namespace gw::loop {

void Control::startHealthChecks() {
  health_ = std::make_unique<health::HealthChecker>(*ctx_, upstream::HealthBoard::process());
  dns_ = std::make_unique<health::DnsRefresher>(
      *ctx_, [this](const health::Resolved& resolved) { onDnsRound(resolved); });
  applyHealth(*snapshot_);
}

void Control::applyHealth(const config::Snapshot& snapshot) {
  if (health_) health_->apply(snapshot);
  if (dns_) dns_->apply(snapshot);
}

void Control::stopHealth() {
  if (health_) health_->stop();
  if (dns_) dns_->stop();
}

void Control::onDnsRound(const health::Resolved& resolved) {
  if (draining_.load()) return;
  std::shared_ptr<config::Snapshot> next = health::withResolved(*snapshot_, resolved);
  if (next == nullptr) return;  // nothing moved
  // The file's view gets the addresses too, so a later flip or override keeps them.
  if (file_snapshot_ != nullptr) {
    if (auto file = health::withResolved(*file_snapshot_, resolved)) file_snapshot_ = file;
  }
  log::info("endpoint addresses changed after re-resolution; publishing",
            {log::num("version", static_cast<long long>(config_version_ + 1))});
  publish(next, bind_addresses_);
}

bool Control::poolHasHealthyEndpoint(const std::string& service, const std::string& pool) const {
  if (health_ == nullptr) {
    const config::Service* s = snapshot_->findService(service);
    return s != nullptr && s->pools.count(pool) != 0;
  }
  return health_->poolHasHealthyEndpoint(*snapshot_, service, pool);
}

// ,"health":{"POOL":{"ENDPOINT":"healthy",...},...},"healthy_pools":{"POOL":true,...}
void Control::appendServiceHealth(std::string& out, const config::Service& service) const {
  out += ",\"health\":{";
  std::string healthy_pools;
  bool first_pool = true;
  for (const auto& [pool_name, pool] : service.pools) {
    out += first_pool ? "\"" : ",\"";
    healthy_pools += first_pool ? "\"" : ",\"";
    first_pool = false;
    log::appendJsonEscaped(out, pool_name);
    log::appendJsonEscaped(healthy_pools, pool_name);
    healthy_pools += "\":";
    healthy_pools += poolHasHealthyEndpoint(service.name, pool_name) ? "true" : "false";
    out += "\":{";
    for (size_t i = 0; i < pool.endpoints.size(); ++i) {
      out += i == 0 ? "\"" : ",\"";
      log::appendJsonEscaped(out, pool.endpoints[i].key);
      out += "\":\"";
      out += health_ != nullptr ? health_->endpointState(service.name, pool.endpoints[i].key)
                                : "not_checked";
      out += "\"";
    }
    out += "}";
  }
  out += "},\"healthy_pools\":{" + healthy_pools + "}";
}

// The balancing decision counters (summed over workers) and the health-check counters.
void Control::appendHealthStats(std::string& out) const {
  struct Field {
    const char* name;
    Counter upstream::BalancingStats::*counter;
  };
  static const Field kFields[] = {
      {"outlier_ejections", &upstream::BalancingStats::outlier_ejections},
      {"outlier_returns", &upstream::BalancingStats::outlier_returns},
      {"outlier_ejections_skipped", &upstream::BalancingStats::outlier_ejections_skipped},
      {"panic_picks", &upstream::BalancingStats::panic_picks},
      {"no_healthy_endpoint", &upstream::BalancingStats::no_healthy_endpoint},
      {"circuit_breaker_max_requests", &upstream::BalancingStats::breaker_max_requests},
      {"circuit_breaker_max_pending", &upstream::BalancingStats::breaker_max_pending},
      {"circuit_breaker_max_connections", &upstream::BalancingStats::breaker_max_connections},
      {"retries", &upstream::BalancingStats::retries},
      {"retry_budget_exhausted", &upstream::BalancingStats::retry_budget_exhausted},
  };
  for (const Field& f : kFields) {
    uint64_t sum = 0;
    for (const auto& w : workers_) sum += (w->stats().balancing.*f.counter).get();
    out += ",\"";
    out += f.name;
    out += "\":" + std::to_string(sum);
  }
  health::HealthChecker::Counters c;
  if (health_ != nullptr) c = health_->counters();
  out += ",\"health_checks_passed\":" + std::to_string(c.checks_passed);
  out += ",\"health_checks_failed\":" + std::to_string(c.checks_failed);
  out += ",\"health_marked_down\":" + std::to_string(c.marked_down);
  out += ",\"health_marked_up\":" + std::to_string(c.marked_up);
  out += ",\"dns_refresh_rounds\":" + std::to_string(dns_ ? dns_->rounds() : 0);
  out += ",\"dns_refresh_failures\":" + std::to_string(dns_ ? dns_->failures() : 0);
}

}  // namespace gw::loop
