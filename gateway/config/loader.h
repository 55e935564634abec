#pragma once
// TOML -> Snapshot. Parses, validates everything (unknown keys, types, ranges,
// references between routes and services), resolves endpoint hostnames, and returns
// either a snapshot or every error found, each with file, line and reason.
// Runs on the control thread (it may block on DNS); never on a worker loop.

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/config/snapshot.h"

namespace gw::config {

struct ConfigError {
  SourceLocation where;
  std::string reason;
  // "file:line:col: reason" (":col" omitted when unknown).
  std::string toString() const;
};

struct LoadResult {
  std::shared_ptr<const Snapshot> snapshot;  // null when errors is non-empty
  std::vector<ConfigError> errors;
  bool ok() const { return snapshot != nullptr; }
};

// Settings that replace the file's, for sidecars and containers: from command-line
// flags (--listen) or GATEWAY_* environment variables. Each keeps where it came from,
// so an error names the flag or the variable ("GATEWAY_LISTEN: ..."). They are applied
// to the parsed TOML before it is validated, so they are checked exactly like the file
// (and GET /config shows the result). See overrides.cc for what each one changes.
struct Override {
  std::string key;     // one of overrideKeys()
  std::string value;   // as given
  std::string origin;  // "--listen" or "GATEWAY_LISTEN"
};
using Overrides = std::vector<Override>;

struct OverrideKey {
  std::string_view key;   // "listen"
  std::string_view flag;  // "--listen", or "" when there is no flag
  std::string_view env;   // "GATEWAY_LISTEN"
};
// Every override, in the order they are applied.
const std::vector<OverrideKey>& overrideKeys();
// The overrides found in `env` (variable name -> value; unknown names are ignored),
// except for keys already in `flags`, appended to `flags`: flags win over variables.
Overrides withEnvironment(Overrides flags, const std::map<std::string, std::string>& env);
// Quick mode, no file: `overrides` must set listen and upstream; source is "<flags>".
LoadResult loadQuickConfig(const Overrides& overrides);

LoadResult loadConfigFile(const std::string& path, const Overrides& overrides = {});
// Every file of the config at `path` (the main file and what it includes), names and
// bytes; "" when the main file cannot be read. The control thread compares it to notice
// a change in any of them without building a snapshot.
std::string readConfigFingerprint(const std::string& path);
LoadResult loadConfigString(std::string_view toml_text, const std::string& source_name,
                            const Overrides& overrides = {});

// The stats slot of the pool "service/pool" (see Pool::stats_slot): the same number for
// the same name for the life of the process; 0 once all slots are taken. Thread-safe.
uint16_t poolStatsSlot(const std::string& service, const std::string& pool);
// The same for a route name (route::Route::stats_slot, route::kRouteStatSlots).
uint16_t routeStatsSlot(const std::string& route);

// Parses "5s", "250ms", "2m", "1h". (The loader refuses bare integers: a unit is required.)
bool parseDuration(std::string_view text, uint64_t& out_ms);
// Parses "16KiB", "10MiB", "1GiB", "512B", "4KB" (KB = 1000) into bytes.
bool parseSize(std::string_view text, uint64_t& out_bytes);

}  // namespace gw::config
