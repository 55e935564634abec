// libFuzzer target: the route matcher (gw::route::Router).
//
// Input: lines. Line 0 is the method, line 1 the host, line 2 the path (with an optional
// query, which rewritePath() keeps), then "name: value" header lines. A line
//   "@route HOST KIND PATH METHOD HEADER[=VALUE] REWRITE"   ("-" for an empty field;
//   KIND is any, exact, prefix or regex)
// adds a fuzzed route in front of a fixed table that covers every kind of match.
//
// Checked: match() returns nullptr or a route of the table; the host's case and a
// ":port" suffix do not change the result; a rewritten path is non-empty and keeps the
// query; a matching fixed route really holds for the request (checked independently).
#include <re2/re2.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/http/header.h"
#include "gateway/route/route.h"

namespace {

using gw::route::HeaderMatch;
using gw::route::PathMatch;
using gw::route::Route;

Route makeRoute(std::string name, std::string host, PathMatch kind, std::string path,
                std::vector<std::string> methods = {}, std::vector<HeaderMatch> headers = {},
                const char* rewrite = nullptr) {
  Route r;
  r.name = std::move(name);
  r.service = "svc";
  r.match.host = std::move(host);
  r.match.path_kind = kind;
  if (kind == PathMatch::Regex) {
    RE2::Options options;
    options.set_log_errors(false);
    r.match.regex = std::make_shared<const RE2>(path, options);
  } else {
    r.match.path = std::move(path);
  }
  r.match.methods = std::move(methods);
  r.match.headers = std::move(headers);
  if (rewrite != nullptr) r.prefix_rewrite = rewrite;
  return r;
}

std::vector<Route> fixedRoutes() {
  std::vector<Route> routes;
  routes.push_back(makeRoute("exact", "api.example.com", PathMatch::Exact, "/health"));
  routes.push_back(
      makeRoute("wild", "*.example.com", PathMatch::Prefix, "/v1/", {"GET", "HEAD"}, {}, "/"));
  routes.push_back(makeRoute("canary", "", PathMatch::Prefix, "/api/", {},
                             {{"x-canary", std::string("1")}}, "/internal/"));
  routes.push_back(makeRoute("present", "", PathMatch::Prefix, "/api/", {"POST"},
                             {{"authorization", std::nullopt}}));
  routes.push_back(makeRoute("regex", "", PathMatch::Regex, "/users/[0-9]+(/orders/[a-z0-9-]+)?"));
  routes.push_back(makeRoute("ipv6", "[::1]", PathMatch::Any, ""));
  routes.push_back(makeRoute("strip", "", PathMatch::Prefix, "/strip", {}, {}, ""));
  routes.push_back(makeRoute("fallback", "", PathMatch::Prefix, "/"));
  return routes;
}

std::vector<std::string_view> splitOn(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    size_t at = text.find(sep);
    out.push_back(text.substr(0, at));
    if (at == std::string_view::npos) break;
    text.remove_prefix(at + 1);
  }
  return out;
}

std::string field(std::string_view f) { return f == "-" ? std::string() : std::string(f); }

bool parseRouteLine(std::string_view line, Route& out) {
  std::vector<std::string_view> f = splitOn(line.substr(7), ' ');
  if (f.size() < 6) return false;
  PathMatch kind = PathMatch::Any;
  if (f[1] == "exact") kind = PathMatch::Exact;
  if (f[1] == "prefix") kind = PathMatch::Prefix;
  if (f[1] == "regex") kind = PathMatch::Regex;
  std::vector<std::string> methods;
  if (!field(f[3]).empty()) methods.push_back(field(f[3]));
  std::vector<HeaderMatch> headers;
  if (!field(f[4]).empty()) {
    size_t eq = f[4].find('=');
    HeaderMatch h;
    h.name = std::string(f[4].substr(0, eq));
    if (eq != std::string_view::npos) h.value = std::string(f[4].substr(eq + 1));
    headers.push_back(std::move(h));
  }
  std::string rewrite = field(f[5]);
  out = makeRoute("fuzzed", field(f[0]), kind, field(f[2]), std::move(methods), std::move(headers),
                  f[5] == "-" ? nullptr : rewrite.c_str());
  return kind != PathMatch::Regex || out.match.regex->ok();
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;  // route facts are bounded by the header limits anyway
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> lines = splitOn(text, '\n');
  while (lines.size() < 3) lines.push_back({});

  std::vector<Route> table;
  std::vector<gw::http::HeaderView> headers;
  for (size_t i = 3; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (line.substr(0, 7) == "@route ") {
      Route r;
      if (table.size() < 4 && parseRouteLine(line, r)) table.push_back(std::move(r));
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    headers.push_back({line.substr(0, colon), line.substr(colon + 1)});
  }
  size_t fuzzed_routes = table.size();
  for (Route& r : fixedRoutes()) table.push_back(std::move(r));
  gw::route::Router router(std::move(table));

  std::string_view target = lines[2];
  std::string_view path = target.substr(0, target.find('?'));
  gw::route::RequestFacts facts;
  facts.method = lines[0];
  facts.host = lines[1];
  facts.path = path;
  facts.headers = headers.data();
  facts.header_count = headers.size();
  const Route* matched = router.match(facts);

  const std::vector<Route>& routes = router.routes();
  if (matched != nullptr) {
    if (matched < routes.data() || matched >= routes.data() + routes.size()) std::abort();
    std::string storage;
    std::string_view rewritten = gw::route::Router::rewritePath(*matched, target, storage);
    if (rewritten.empty() && !target.empty()) std::abort();
    size_t query = target.find('?');
    if (query != std::string_view::npos &&
        rewritten.substr(rewritten.size() - (target.size() - query)) != target.substr(query)) {
      std::abort();  // the query survives a rewrite unchanged
    }
    // Independent checks of what a fixed route promised.
    if (static_cast<size_t>(matched - routes.data()) >= fuzzed_routes) {
      const gw::route::RouteMatch& m = matched->match;
      if (m.path_kind == PathMatch::Exact && path != m.path) std::abort();
      if (m.path_kind == PathMatch::Prefix && path.substr(0, m.path.size()) != m.path) {
        std::abort();
      }
      for (const HeaderMatch& want : m.headers) {
        bool found = false;
        for (const auto& h : headers) {
          found = found || (gw::http::equalsIgnoreCase(h.name, want.name) &&
                            (!want.value || gw::http::trimOws(h.value) == *want.value));
        }
        if (!found) std::abort();
      }
    }
  }

  // Host case and a port do not change the route.
  std::string host_upper = upper(facts.host);
  gw::route::RequestFacts variant = facts;
  variant.host = host_upper;
  if (router.match(variant) != matched) std::abort();
  if (!facts.host.empty() && facts.host.find(':') == std::string_view::npos &&
      facts.host.front() != '[') {
    std::string with_port = std::string(facts.host) + ":8443";
    variant.host = with_port;
    if (router.match(variant) != matched) std::abort();
  }
  return 0;
}
