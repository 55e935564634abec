#pragma once
// What an operator asks about a config: the effective config (GET /config) and what a
// reload would change (`gateway --check NEW --diff RUNNING`, POST /config/diff).

#include <string>
#include <vector>

#include "gateway/config/snapshot.h"

namespace gw::config {

// The merged config (main file and includes) as JSON, with the active pools as the
// snapshot serves them (so admin-API flips show).
std::string effectiveConfigJson(const Snapshot& snapshot);

struct ConfigChange {
  std::string kind;    // "setting", "listener", "route", "filter", "service", "pool"
  std::string name;    // "admin", "public", "api", "api/green", "api#1 (cors)"
  std::string change;  // "added", "removed", "changed"
  std::string detail;  // what changed, e.g. "listen: 0.0.0.0:8080 -> 0.0.0.0:8081"
};

struct ConfigDiff {
  std::vector<ConfigChange> changes;
  // Listeners whose sockets a reload closes (removed, or moved to another address): their
  // open connections drain.
  std::vector<std::string> drained_listeners;
  // Services whose new requests go to another pool (the blast radius of a flip).
  std::vector<std::string> switched_services;
};

ConfigDiff diffSnapshots(const Snapshot& running, const Snapshot& next);

// One change per line, then a summary: what `--check --diff` prints.
std::string diffToText(const ConfigDiff& diff);
// {"changes":[...],"drained_listeners":[...],"switched_services":[...]} without the
// closing brace, so a caller may append live figures.
std::string diffToJsonOpen(const ConfigDiff& diff);

}  // namespace gw::config
