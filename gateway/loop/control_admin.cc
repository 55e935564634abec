#include "gateway/config/describe.h"
#include "gateway/config/loader.h"
#include "gateway/core/log.h"
#include "gateway/loop/control.h"

namespace gw::loop {

void Control::loadOverrides() {
  file_snapshot_ = snapshot_;
  state_path_ = config::ActiveOverrides::pathFor(snapshot_->source);
  std::string error = overrides_.load(state_path_);
  if (!error.empty()) {
    log::warn("ignoring the flip state file", {log::str("error", error)});
    return;
  }
  snapshot_ = withOverrides();
  for (const auto& [service, o] : overrides_.all()) {
    log::info("active pool set by an earlier admin API flip",
              {log::str("service", service), log::str("active", o.active),
               log::str("state_file", state_path_)});
  }
}

std::shared_ptr<const config::Snapshot> Control::withOverrides() {
  std::vector<std::string> dropped;
  std::shared_ptr<const config::Snapshot> next = overrides_.apply(file_snapshot_, dropped);
  for (const std::string& service : dropped) {
    log::info("the config file changed the active pool; the admin API flip is cleared",
              {log::str("service", service)});
  }
  if (!dropped.empty()) saveOverrides();
  return next;
}

void Control::saveOverrides() {
  std::string error = overrides_.save(state_path_);
  if (!error.empty()) log::error("cannot write the flip state file", {log::str("error", error)});
}

admin::AdminReply Control::setActive(const std::string& service, const std::string& pool_in,
                                     bool force) {
  auto json_error = [](int status, const std::string& message) {
    std::string out = "{\"ok\":false,\"error\":\"";
    log::appendJsonEscaped(out, message);
    return admin::AdminReply{status, out + "\"}\n"};
  };
  if (draining_.load()) return json_error(503, "draining");
  const config::Service* current = snapshot_->findService(service);
  if (current == nullptr) return json_error(404, "no service \"" + service + "\"");
  std::string pool = pool_in;
  if (pool.empty()) {
    if (current->pools.size() != 2) {
      return json_error(409, "flip needs exactly two pools; use PUT /services/" + service +
                                 "/active with a pool name");
    }
    for (const auto& [name, p] : current->pools) {
      if (name != current->active) pool = name;
    }
  }
  if (current->pools.count(pool) == 0) {
    std::string names;
    for (const auto& [name, p] : current->pools) names += (names.empty() ? "" : ", ") + name;
    return json_error(
        404, "service \"" + service + "\" has no pool \"" + pool + "\" (pools: " + names + ")");
  }
  std::string previous = current->active;
  if (pool != previous && !force && !poolHasHealthyEndpoint(service, pool)) {
    log::warn("flip refused: no healthy endpoint in the new pool",
              {log::str("service", service), log::str("pool", pool)});
    return json_error(409, "pool \"" + pool + "\" of service \"" + service +
                               "\" has no healthy endpoint (every endpoint fails its health "
                               "check); add ?force=1 to flip anyway");
  }
  if (pool != previous) {
    auto next = std::make_shared<config::Snapshot>(*snapshot_);
    next->services[service].active = pool;
    const config::Service* in_file = file_snapshot_->findService(service);
    overrides_.set(service, pool, in_file != nullptr ? in_file->active : previous);
    saveOverrides();
    publish(next, bind_addresses_);
    log::info("active pool changed",
              {log::str("service", service), log::str("from", previous), log::str("to", pool),
               log::str("trigger", "admin API"),
               log::num("version", static_cast<long long>(config_version_)),
               log::num("applied_us", static_cast<long long>(last_publish_us_))});
  }
  // When this returns, every worker sends new requests to `pool` (publish() waited).
  return admin::AdminReply{
      200, "{\"ok\":true,\"service\":\"" + service + "\",\"previous\":\"" + previous +
               "\",\"active\":\"" + pool + "\",\"version\":" + std::to_string(config_version_) +
               ",\"applied_us\":" + std::to_string(pool != previous ? last_publish_us_ : 0) +
               ",\"all_workers\":" + (last_publish_complete_ ? "true" : "false") + "}\n"};
}

admin::AdminReply Control::servicesJson() const {
  std::string out = "{\"version\":" + std::to_string(config_version_) + ",\"services\":{";
  bool first_service = true;
  for (const auto& [name, service] : snapshot_->services) {
    out += first_service ? "\"" : ",\"";
    first_service = false;
    log::appendJsonEscaped(out, name);
    out += "\":{\"active\":\"";
    log::appendJsonEscaped(out, service.active);
    out += "\",\"flipped_by_api\":";
    out += overrides_.all().count(name) ? "true" : "false";
    out += ",\"split\":{";
    for (size_t i = 0; i < service.split.size(); ++i) {
      out += i == 0 ? "\"" : ",\"";
      log::appendJsonEscaped(out, service.split[i].pool);
      out += "\":" + std::to_string(service.split[i].weight);
    }
    out += "},\"canary\":" + canaryJson(name);
    out += ",\"lb\":\"" + service.lb + "\",\"pools\":{";
    bool first_pool = true;
    for (const auto& [pool_name, pool] : service.pools) {
      out += first_pool ? "\"" : ",\"";
      first_pool = false;
      log::appendJsonEscaped(out, pool_name);
      out += "\":[";
      for (size_t i = 0; i < pool.endpoints.size(); ++i) {
        out += i == 0 ? "\"" : ",\"";
        log::appendJsonEscaped(out, pool.endpoints[i].key);
        out += "\"";
      }
      out += "]";
    }
    // Each pool's upstream protocol ("http1", "h2c", "h2"), by pool name.
    out += "},\"pool_protocols\":{";
    first_pool = true;
    for (const auto& [pool_name, pool] : service.pools) {
      out += first_pool ? "\"" : ",\"";
      first_pool = false;
      log::appendJsonEscaped(out, pool_name);
      out += "\":\"";
      out += config::protocolName(pool.protocol);
      out += "\"";
    }
    out += "}";
    appendServiceHealth(out, service);
    out += "}";
  }
  return admin::AdminReply{200, out + "}}\n"};
}

std::string Control::statsJson() const {
  struct Field {
    const char* name;
    proxy::Counter proxy::WorkerStats::*counter;
  };
  static const Field kFields[] = {
      {"connections_accepted", &proxy::WorkerStats::connections_accepted},
      {"connections_active", &proxy::WorkerStats::connections_active},
      {"connections_refused", &proxy::WorkerStats::connections_refused},
      {"requests", &proxy::WorkerStats::requests},
      {"responses_1xx", &proxy::WorkerStats::responses_1xx},
      {"responses_2xx", &proxy::WorkerStats::responses_2xx},
      {"responses_3xx", &proxy::WorkerStats::responses_3xx},
      {"responses_4xx", &proxy::WorkerStats::responses_4xx},
      {"responses_5xx", &proxy::WorkerStats::responses_5xx},
      {"local_replies", &proxy::WorkerStats::local_replies},
      {"bad_requests", &proxy::WorkerStats::bad_requests},
      {"upstream_connect_failures", &proxy::WorkerStats::upstream_connect_failures},
      {"upstream_timeouts", &proxy::WorkerStats::upstream_timeouts},
      {"upstream_retries", &proxy::WorkerStats::upstream_retries},
      {"upstream_resets", &proxy::WorkerStats::upstream_resets},
      {"header_timeouts", &proxy::WorkerStats::header_timeouts},
      {"snapshots_retained", &proxy::WorkerStats::snapshots_retained},
      {"drains_started", &proxy::WorkerStats::drains_started},
  };
  std::string out = "{";
  bool first = true;
  for (const Field& f : kFields) {
    uint64_t sum = 0;
    for (const auto& w : workers_) {
      sum += (w->stats().*f.counter).get();
    }
    if (!first) out += ",";
    first = false;
    out += "\"";
    out += f.name;
    out += "\":" + std::to_string(sum);
  }
  appendTlsStats(out);
  appendHealthStats(out);
  out += ",\"workers\":" + std::to_string(workers_.size());
  out += ",\"config_version\":" + std::to_string(config_version_);
  out += ",\"config_reloads_ok\":" + std::to_string(reloads_ok_);
  out += ",\"config_reloads_failed\":" + std::to_string(reloads_failed_);
  out += std::string(",\"last_reload_ok\":") + (last_reload_ok_ ? "true" : "false");
  out += ",\"last_reload_error\":\"";
  log::appendJsonEscaped(out, last_reload_error_);
  out += "\",\"last_reload_attempt\":\"" + last_reload_time_ + "\"";
  out += ",\"canary_rollbacks\":" + std::to_string(canary_rollbacks_);
  out += ",\"canary_promotions\":" + std::to_string(canary_promotions_) + "}\n";
  return out;
}

admin::AdminReply Control::configJson() const {
  std::string out = "{\"version\":" + std::to_string(config_version_) + ",\"hash\":\"" +
                    snapshot_->hash + "\",\"source\":\"";
  log::appendJsonEscaped(out, snapshot_->source);
  out += "\",\"files\":[";
  for (size_t i = 0; i < snapshot_->files.size(); ++i) {
    out += i == 0 ? "\"" : ",\"";
    log::appendJsonEscaped(out, snapshot_->files[i]);
    out += "\"";
  }
  out += "],\"workers\":" + std::to_string(snapshot_->workers);
  out += ",\"last_reload\":{\"ok\":";
  out += last_reload_ok_ ? "true" : "false";
  out += ",\"attempted\":\"" + last_reload_time_ + "\",\"error\":\"";
  log::appendJsonEscaped(out, last_reload_error_);
  out += "\",\"succeeded\":" + std::to_string(reloads_ok_) +
         ",\"failed\":" + std::to_string(reloads_failed_) + "}";
  out += ",\"config\":" + config::effectiveConfigJson(*snapshot_) + "}\n";
  return admin::AdminReply{200, out};
}

admin::AdminReply Control::diffJson(const std::string& toml) {
  if (snapshot_->source == "<flags>" && toml.empty()) {
    return admin::AdminReply{409, "{\"ok\":false,\"error\":\"quick mode has no config file\"}\n"};
  }
  config::LoadResult loaded =
      toml.empty() ? config::loadConfigFile(snapshot_->source, env_overrides_)
                   : config::loadConfigString(toml, snapshot_->source, env_overrides_);
  if (!loaded.ok()) {
    std::string out = "{\"ok\":false,\"errors\":[";
    for (size_t i = 0; i < loaded.errors.size(); ++i) {
      out += i == 0 ? "\"" : ",\"";
      log::appendJsonEscaped(out, loaded.errors[i].toString());
      out += "\"";
    }
    return admin::AdminReply{422, out + "]}\n"};
  }
  // What a reload would serve: the new files with the admin-API flips that would hold.
  config::ActiveOverrides overrides = overrides_;
  std::vector<std::string> dropped;
  std::shared_ptr<const config::Snapshot> next = overrides.apply(loaded.snapshot, dropped);
  config::ConfigDiff diff = config::diffSnapshots(*snapshot_, *next);

  std::map<std::string, uint64_t> per_listener;
  for (const auto& w : workers_) {
    for (const auto& [name, n] : w->connectionsByListener()) per_listener[name] += n;
  }
  uint64_t to_drain = 0;
  std::string by_listener;
  for (const std::string& name : diff.drained_listeners) {
    uint64_t n = per_listener.count(name) ? per_listener[name] : 0;
    to_drain += n;
    by_listener += by_listener.empty() ? "\"" : ",\"";
    log::appendJsonEscaped(by_listener, name);
    by_listener += "\":" + std::to_string(n);
  }
  std::string out = "{\"ok\":true,\"diff\":" + config::diffToJsonOpen(diff) + "}";
  out += ",\"connections_to_drain\":" + std::to_string(to_drain);
  out += ",\"connections_by_drained_listener\":{" + by_listener + "}";
  out += ",\"text\":\"";
  log::appendJsonEscaped(out, config::diffToText(diff));
  out += "\"}\n";
  return admin::AdminReply{200, out};
}

}  // namespace gw::loop
