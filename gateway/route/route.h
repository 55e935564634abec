#pragma once
// The route table: what a request must look like to match a route, and the compiled
// first-match-wins matcher the proxy asks for every request. Built once per config
// snapshot by gateway/config; immutable afterwards, so every worker can read it.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/http/header.h"

namespace re2 {
class RE2;
}

namespace gw::route {

enum class PathMatch { Any, Exact, Prefix, Regex };

struct HeaderMatch {
  std::string name;                  // compared case-insensitively
  std::optional<std::string> value;  // nullopt: presence is enough; else exact value
};

struct RouteMatch {
  // Empty: any host. "api.example.com": exact (case-insensitive, port ignored).
  // "*.example.com": any host ending in ".example.com" (not the apex itself).
  std::string host;
  PathMatch path_kind = PathMatch::Any;
  std::string path;                       // for Exact and Prefix
  std::shared_ptr<const re2::RE2> regex;  // for Regex: must match the whole path
  std::vector<std::string> methods;       // empty: any method; else upper-case names
  std::vector<HeaderMatch> headers;       // all must match
};

// Per-route counters and histograms live in each worker's stats at this index
// (1..kRouteStatSlots-1; 0 = not counted). Like a pool's, the index belongs to the route
// name for the life of the process, so counts survive reloads.
constexpr uint16_t kRouteStatSlots = 256;

struct Route {
  std::string name;
  uint16_t stats_slot = 0;
  RouteMatch match;
  std::string service;  // name of a service in the same snapshot
  // When set (and the match is a path prefix), the matched prefix is replaced with
  // this on the way upstream: prefix "/api/" + prefix_rewrite "/" sends "/api/x" as "/x".
  std::optional<std::string> prefix_rewrite;
  // The protocols a request may upgrade to on this route (lower case). An upgrade that
  // offers any other goes upstream as plain HTTP/1.1, without Upgrade: a tunnel takes
  // every later byte past routes and filters, so it is opt-in, as in Envoy.
  std::vector<std::string> upgrades{"websocket"};
};

// What the router looks at. `path` excludes the query; `headers` are the request's.
struct RequestFacts {
  std::string_view method;
  std::string_view host;  // Host header or the authority of an absolute-form target
  std::string_view path;
  const http::HeaderView* headers = nullptr;
  size_t header_count = 0;
};

class Router {
 public:
  explicit Router(std::vector<Route> routes);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // First route (in file order) whose match holds, or nullptr. Thread-safe: const.
  const Route* match(const RequestFacts& request) const;

  // The path to send upstream: `path_and_query` with the route's prefix rewritten.
  // Returns `path_and_query` unchanged when the route has no rewrite.
  static std::string_view rewritePath(const Route& route, std::string_view path_and_query,
                                      std::string& storage);

  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
};

}  // namespace gw::route
