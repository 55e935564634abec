// A service's traffic split between its pools: a fixed `split`, or a `canary` that the
// control thread steps and may roll back (see Canary in snapshot.h).
#include <map>
#include <mutex>

#include "gateway/config/sections.h"

namespace gw::config {

uint16_t poolStatsSlot(const std::string& service, const std::string& pool) {
  static std::mutex mutex;
  static std::map<std::string, uint16_t> slots;
  std::lock_guard lock(mutex);
  std::string key = service + "/" + pool;
  auto it = slots.find(key);
  if (it != slots.end()) return it->second;
  if (slots.size() + 1 >= kPoolStatSlots) return 0;
  uint16_t slot = static_cast<uint16_t>(slots.size() + 1);
  slots.emplace(std::move(key), slot);
  return slot;
}

uint16_t routeStatsSlot(const std::string& route) {
  static std::mutex mutex;
  static std::map<std::string, uint16_t> slots;
  std::lock_guard lock(mutex);
  auto it = slots.find(route);
  if (it != slots.end()) return it->second;
  if (slots.size() + 1 >= route::kRouteStatSlots) return 0;
  auto slot = static_cast<uint16_t>(slots.size() + 1);
  slots.emplace(route, slot);
  return slot;
}

namespace detail {
namespace {

std::vector<std::string> poolNames(const Service& service) {
  std::vector<std::string> names;
  for (const auto& [name, pool] : service.pools) names.push_back(name);
  return names;
}

void readSplit(TableReader& service, const std::string& where, const toml::table& table,
               Service& out) {
  Diagnostics& diag = service.diag();
  size_t errors_before = diag.count();
  uint32_t total = 0;
  for (auto&& [key, value] : table) {
    std::string pool(key.str());
    if (out.pools.count(pool) == 0) {
      diag.error(value, where + ": split names pool " + quoted(pool) +
                            ", which does not exist (pools: " + joined(poolNames(out)) + ")");
      continue;
    }
    std::optional<int64_t> weight = value.value<int64_t>();
    if (!value.is_integer() || !weight || *weight < 0 || *weight > 100) {
      diag.error(value, where + ": split weight of " + quoted(pool) +
                            " must be an integer from 0 to 100 (a percentage)");
      continue;
    }
    total += static_cast<uint32_t>(*weight);
    if (*weight > 0) out.split.push_back({pool, static_cast<uint32_t>(*weight)});
  }
  if (diag.count() == errors_before && total != 100) {
    diag.error(table, where + ": split weights must add up to 100 (they add up to " +
                          std::to_string(total) + ")");
  }
}

void readCanary(TableReader& service, const std::string& where, const toml::table& table,
                Service& out) {
  Diagnostics& diag = service.diag();
  TableReader canary(
      diag, table, "in " + where + " canary",
      {"pool", "steps", "step_interval", "max_error_rate", "window", "min_requests"});
  Canary c;
  if (!canary.getString("pool", c.pool)) {
    if (canary.find("pool") == nullptr) {
      diag.error(table, where + ": canary needs \"pool\", the pool that takes over");
    }
    return;
  }
  if (out.pools.count(c.pool) == 0 || c.pool == out.active) {
    diag.error(
        *canary.find("pool"),
        where + ": canary pool " + quoted(c.pool) +
            (c.pool == out.active ? " is the active pool; name the new pool"
                                  : " does not exist (pools: " + joined(poolNames(out)) + ")"));
    return;
  }
  const toml::node* steps = canary.find("steps");
  const toml::array* array = steps ? steps->as_array() : nullptr;
  if (steps != nullptr && array == nullptr) {
    diag.error(*steps, where + ": canary steps must be an array of percentages, e.g. [5, 25, 100]");
  } else if (array != nullptr) {
    uint32_t previous = 0;
    for (const toml::node& step : *array) {
      std::optional<int64_t> v = step.value<int64_t>();
      if (!step.is_integer() || !v || *v < 1 || *v > 100 || static_cast<uint32_t>(*v) <= previous) {
        diag.error(step, where + ": canary steps must be increasing percentages from 1 to 100");
        return;
      }
      previous = static_cast<uint32_t>(*v);
      c.steps.push_back(previous);
    }
  }
  if (c.steps.empty()) c.steps = {5, 25, 50, 100};
  canary.getDuration("step_interval", 1, c.step_interval_ms);
  canary.getDuration("window", 1, c.window_ms);
  canary.getUint32("min_requests", 1, 1'000'000, c.min_requests);
  if (const toml::node* rate = canary.find("max_error_rate")) {
    std::optional<double> v = rate->value<double>();
    if (!v || *v < 0 || *v > 1) {
      diag.error(*rate,
                 where + ": canary max_error_rate must be a fraction from 0 to 1, e.g. 0.05");
    } else {
      c.max_error_rate = *v;
    }
  }
  out.canary = std::move(c);
}

}  // namespace

void readTrafficSplit(TableReader& service, const std::string& name, Service& out) {
  std::string where = "service " + quoted(name);
  const toml::table* split = service.getTable("split");
  const toml::table* canary = service.getTable("canary");
  if (split != nullptr && canary != nullptr) {
    service.diag().error(*canary, where +
                                      ": set either split (fixed weights) or canary "
                                      "(stepped weights with rollback), not both");
    return;
  }
  if (split != nullptr) readSplit(service, where, *split, out);
  if (canary != nullptr) readCanary(service, where, *canary, out);
}

}  // namespace detail
}  // namespace gw::config
