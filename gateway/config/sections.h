#pragma once
// Private to gateway/config: one reader per part of the file. Each reports its own
// errors into the Diagnostics and fills what it could; loader.cc runs them in order
// and checks the references between them.

#include <map>
#include <string>
#include <vector>

#include "gateway/config/reader.h"
#include "gateway/config/snapshot.h"
#include "gateway/route/route.h"

namespace gw::config::detail {

// The number of CPUs this process may run on (what workers = "auto" means), 1..256.
uint32_t availableCores();

// The keys of [limits] and of a listener's `limits` table.
const std::vector<std::string_view>& limitKeys();
// Overrides the fields of `out` that `table` sets.
void readLimits(TableReader& table, Limits& out);

// Grafts flags and environment variables into the merged TOML (overrides.cc).
void applyOverrides(Diagnostics& diag, const Overrides& overrides, toml::table& root);
// [access_log], [metrics] and [tracing] (config/observability.cc).
void readObservability(TableReader& root, Snapshot& out);

// workers, [admin], [log], [limits], [forwarding].
void readGlobals(TableReader& root, Snapshot& out);

// [[listeners]]; needs out.limits (the defaults) and out.admin already read.
void readListeners(TableReader& root, Snapshot& out);

// A listener's `tls` table (config/tls.cc): reads, checks the files, builds out.tls.
void readListenerTls(TableReader& listener, Listener& out);

// A listener's `redirect_to_https` (config/tls.cc): true (port 443) or a port.
void readRedirectToHttps(TableReader& listener, Listener& out);

// A pool's `tls` (config/tls.cc): `true`, or a table; builds out.tls.
void readPoolTls(TableReader& pool, const std::string& where, Pool& out);

// A route and where its `service` was written, for the reference check.
struct ParsedRoute {
  route::Route route;
  toml::source_region where;            // the service value, or the route's table when missing
  const toml::node* filters = nullptr;  // the route's `filters` array, if any
};
// [[routes]], in file order.
std::vector<ParsedRoute> readRoutes(TableReader& root);

// [services.*], hostnames resolved. A service is present in `out` even when parts
// of it had errors, so references to it do not produce a second, misleading error.
void readServices(TableReader& root, std::map<std::string, Service>& out);

// A service's `split` and `canary` (after its pools and `active` were read).
void readTrafficSplit(TableReader& service, const std::string& name, Service& out);
// The [services.NAME] keys of load balancing and resilience (lb, hash_key, health_check,
// outlier, circuit_breaker, retry, ...), and their reader (resilience.cc).
const std::vector<std::string_view>& balancingKeys();
void readBalancing(TableReader& service, const std::string& name, Service& out);
// Filter chains (filters.cc): the top-level `filters` (for all routes) and each route's
// own, built through filter::Registry::global() into out.route_filters (by route index).
void readFilterChains(TableReader& root, const std::vector<ParsedRoute>& routes, Snapshot& out);

}  // namespace gw::config::detail
