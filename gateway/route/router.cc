// First-match-wins route matching. Runs once per request on every worker: it only
// reads the immutable route table and the request's views, and never allocates
// (RE2 may fill its lazily built DFA cache on the first requests; that is RE2's own,
// thread-safe memory, bounded per regex).

#include <re2/re2.h>

#include <utility>

#include "gateway/route/route.h"

namespace gw::route {
namespace {

// The host without a ":port" suffix. "[::1]:8080" -> "[::1]"; "example.com:80" ->
// "example.com"; a bare IPv6 address without brackets ("::1", not valid in a Host
// header) has several colons and is left alone.
std::string_view hostWithoutPort(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  size_t colon = host.find(':');
  if (colon == std::string_view::npos) return host;
  if (host.find(':', colon + 1) != std::string_view::npos) return host;
  return host.substr(0, colon);
}

bool hostMatches(std::string_view pattern, std::string_view request_host) {
  if (pattern.empty()) return true;
  std::string_view host = hostWithoutPort(request_host);
  if (pattern.size() >= 2 && pattern[0] == '*' && pattern[1] == '.') {
    std::string_view suffix = pattern.substr(1);  // ".example.com"
    // Strictly longer: the apex "example.com" and a bare ".example.com" do not match.
    return host.size() > suffix.size() && http::endsWithIgnoreCase(host, suffix);
  }
  return http::equalsIgnoreCase(pattern, host);
}

bool pathMatches(const RouteMatch& m, std::string_view path) {
  switch (m.path_kind) {
    case PathMatch::Any:
      return true;
    case PathMatch::Exact:
      return path == m.path;
    case PathMatch::Prefix:
      return path.substr(0, m.path.size()) == m.path;
    case PathMatch::Regex:
      return m.regex != nullptr && re2::RE2::FullMatch(path, *m.regex);
  }
  return false;
}

bool methodMatches(const std::vector<std::string>& methods, std::string_view method) {
  if (methods.empty()) return true;
  for (const std::string& allowed : methods) {
    if (allowed == method) return true;
  }
  return false;
}

bool headerMatches(const HeaderMatch& want, const RequestFacts& request) {
  for (size_t i = 0; i < request.header_count; ++i) {
    const http::HeaderView& h = request.headers[i];
    if (!http::equalsIgnoreCase(h.name, want.name)) continue;
    if (!want.value || http::trimOws(h.value) == *want.value) return true;
  }
  return false;
}

bool routeMatches(const RouteMatch& m, const RequestFacts& request) {
  if (!methodMatches(m.methods, request.method)) return false;
  if (!hostMatches(m.host, request.host)) return false;
  if (!pathMatches(m, request.path)) return false;
  for (const HeaderMatch& want : m.headers) {
    if (!headerMatches(want, request)) return false;
  }
  return true;
}

}  // namespace

Router::Router(std::vector<Route> routes) : routes_(std::move(routes)) {}

Router::~Router() = default;

const Route* Router::match(const RequestFacts& request) const {
  for (const Route& route : routes_) {
    if (routeMatches(route.match, request)) return &route;
  }
  return nullptr;
}

std::string_view Router::rewritePath(const Route& route, std::string_view path_and_query,
                                     std::string& storage) {
  if (!route.prefix_rewrite || route.match.path_kind != PathMatch::Prefix) {
    return path_and_query;
  }
  const std::string& prefix = route.match.path;
  if (path_and_query.substr(0, prefix.size()) != prefix) return path_and_query;

  std::string_view rest = path_and_query.substr(prefix.size());
  const std::string& replacement = *route.prefix_rewrite;
  storage.clear();
  storage.reserve(replacement.size() + rest.size() + 1);
  storage.append(replacement);
  storage.append(rest);
  // An empty path is not a valid origin-form target: "" -> "/", "?q=1" -> "/?q=1".
  if (storage.empty() || storage.front() == '?') storage.insert(storage.begin(), '/');
  return storage;
}

}  // namespace gw::route
