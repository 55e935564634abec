// Canary releases: a service's `canary` pool gets a growing share of new requests, one
// step per `step_interval`; the control thread samples the pool's error rate every
// second (per-worker counters, summed) and rolls the canary back to the active pool when
// the rate over `window` passes `max_error_rate`. Each change is a new snapshot.
#include <cstdio>

#include "gateway/core/log.h"
#include "gateway/loop/control.h"

namespace gw::loop {
namespace {

constexpr uint64_t kTickMs = 1000;

std::string identityOf(const config::Service& service) {
  const config::Canary& c = *service.canary;
  std::string id = service.active + "|" + c.pool + "|";
  for (uint32_t s : c.steps) id += std::to_string(s) + ",";
  id += "|" + std::to_string(c.step_interval_ms) + "|" + std::to_string(c.window_ms) + "|" +
        std::to_string(c.min_requests) + "|" + std::to_string(c.max_error_rate);
  return id;
}

const char* statusName(int status) {
  return status == 0 ? "running" : status == 1 ? "promoted" : "rolled_back";
}

}  // namespace

std::shared_ptr<const config::Snapshot> Control::withCanaries(
    std::shared_ptr<const config::Snapshot> next) {
  uint64_t now = uv_now(&loop_);
  std::map<std::string, CanaryRun> runs;
  for (const auto& [name, service] : next->services) {
    // A flip to the canary pool itself ends the canary: that pool serves everything.
    if (!service.canary || service.canary->pool == service.active) continue;
    std::string identity = identityOf(service);
    auto it = canaries_.find(name);
    if (it != canaries_.end() && it->second.identity == identity) {
      runs[name] = std::move(it->second);
      continue;
    }
    CanaryRun run;
    run.identity = identity;
    run.step_started_ms = now;
    runs[name] = std::move(run);
    log::info("canary started", {log::str("service", name), log::str("pool", service.canary->pool),
                                 log::str("from", service.active),
                                 log::num("weight", service.canary->steps.front())});
  }
  canaries_ = std::move(runs);
  bool any_canary = false;
  for (const auto& [name, service] : next->services) any_canary = any_canary || service.canary;
  if (!any_canary) return next;
  if (canary_timer_ && !canary_timer_->armed()) ctx_->timers().arm(*canary_timer_, kTickMs);

  auto copy = std::make_shared<config::Snapshot>(*next);
  for (auto& [name, service] : copy->services) {
    if (service.canary && canaries_.count(name) == 0) service.split.clear();
  }
  for (const auto& [name, run] : canaries_) {
    config::Service& service = copy->services[name];
    const config::Canary& c = *service.canary;
    service.split.clear();
    if (run.status == CanaryRun::Status::RolledBack) continue;  // all to active
    uint32_t weight = run.status == CanaryRun::Status::Promoted ? 100 : c.steps[run.step];
    if (weight < 100) service.split.push_back({service.active, 100 - weight});
    service.split.push_back({c.pool, weight});
  }
  return copy;
}

void Control::onCanaryTick(void* self) { static_cast<Control*>(self)->canaryTick(); }

void Control::canaryTick() {
  if (draining_.load()) return;
  uint64_t now = uv_now(&loop_);
  bool changed = false, running = false;
  for (auto& [name, run] : canaries_) {
    if (run.status != CanaryRun::Status::Running) continue;
    const config::Service* service = snapshot_->findService(name);
    if (service == nullptr || !service->canary) continue;
    const config::Canary& c = *service->canary;
    uint16_t slot = service->pools.at(c.pool).stats_slot;
    CanaryRun::Sample sample{now, 0, 0};
    for (const auto& w : workers_) {
      sample.requests += w->stats().pool_requests[slot].get();
      sample.failures += w->stats().pool_failures[slot].get();
    }
    run.samples.push_back(sample);
    // Keep one sample at or before the window's start as the baseline.
    while (run.samples.size() > 2 && run.samples[1].ms + c.window_ms <= now) {
      run.samples.erase(run.samples.begin());
    }
    const CanaryRun::Sample& base = run.samples.front();
    run.window_requests = sample.requests - base.requests;
    uint64_t failures = sample.failures - base.failures;
    run.error_rate = run.window_requests ? double(failures) / double(run.window_requests) : 0;
    if (run.window_requests >= c.min_requests && run.error_rate > c.max_error_rate) {
      run.status = CanaryRun::Status::RolledBack;
      char reason[160];
      std::snprintf(reason, sizeof reason,
                    "error rate %.3f over %llu requests in the last %llu ms passed %.3f",
                    run.error_rate, static_cast<unsigned long long>(run.window_requests),
                    static_cast<unsigned long long>(c.window_ms), c.max_error_rate);
      run.reason = reason;
      canary_rollbacks_++;
      changed = true;
      log::warn("canary rolled back",
                {log::str("service", name), log::str("pool", c.pool),
                 log::str("back_to", service->active), log::str("reason", run.reason)});
      continue;
    }
    if (now - run.step_started_ms >= c.step_interval_ms) {
      if (run.step + 1 < c.steps.size()) {
        run.step++;
        run.step_started_ms = now;
        changed = true;
        log::info("canary step", {log::str("service", name), log::str("pool", c.pool),
                                  log::num("weight", c.steps[run.step])});
      } else if (c.steps.back() == 100) {
        run.status = CanaryRun::Status::Promoted;
        canary_promotions_++;
        changed = true;
        log::info("canary promoted", {log::str("service", name), log::str("pool", c.pool)});
        continue;
      }
    }
    running = true;
  }
  if (changed) publish(snapshot_, bind_addresses_);
  if (running) ctx_->timers().arm(*canary_timer_, kTickMs);
}

std::string Control::canaryJson(const std::string& service) const {
  auto it = canaries_.find(service);
  const config::Service* s = snapshot_->findService(service);
  if (it == canaries_.end() || s == nullptr || !s->canary) return "null";
  const CanaryRun& run = it->second;
  const config::Canary& c = *s->canary;
  uint32_t weight = run.status == CanaryRun::Status::RolledBack ? 0
                    : run.status == CanaryRun::Status::Promoted ? 100
                                                                : c.steps[run.step];
  char rate[32];
  std::snprintf(rate, sizeof rate, "%.4f", run.error_rate);
  std::string out = "{\"pool\":\"";
  log::appendJsonEscaped(out, c.pool);
  out += "\",\"status\":\"" + std::string(statusName(static_cast<int>(run.status))) +
         "\",\"step\":" + std::to_string(run.step + 1) +
         ",\"steps\":" + std::to_string(c.steps.size()) + ",\"weight\":" + std::to_string(weight) +
         ",\"error_rate\":" + rate + ",\"window_requests\":" + std::to_string(run.window_requests) +
         ",\"reason\":\"";
  log::appendJsonEscaped(out, run.reason);
  return out + "\"}";
}

}  // namespace gw::loop
