// [[routes]]: what a request must look like (match) and which service gets it.
#include <re2/re2.h>

#include <algorithm>
#include <map>

#include "gateway/config/sections.h"

namespace gw::config::detail {
namespace {

bool isAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// RFC 9110 token: method and header field names.
bool isToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (isAlnum(c)) continue;
    if (std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) return false;
  }
  return true;
}

// "api.example.com", "*.example.com", "10.0.0.1", "[::1]": no port, no path.
bool isHostPattern(std::string_view h) {
  if (h.size() >= 2 && h[0] == '*' && h[1] == '.') h.remove_prefix(2);
  if (h.empty() || h.front() == '.' || h.back() == '.') return false;
  if (h.front() == '[') {
    if (h.size() < 3 || h.back() != ']') return false;
    for (char c : h.substr(1, h.size() - 2)) {
      bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      if (!hex && c != ':' && c != '.') return false;
    }
    return true;
  }
  for (char c : h) {
    if (!isAlnum(c) && c != '-' && c != '.' && c != '_') return false;
  }
  return true;
}

std::string lower(std::string s) {
  for (char& c : s) c = http::asciiLower(c);
  return s;
}

std::string upper(std::string s) {
  for (char& c : s) c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
  return s;
}

void readPath(TableReader& match, route::RouteMatch& out) {
  Diagnostics& diag = match.diag();
  const char* const kKinds[] = {"path", "path_prefix", "path_regex"};
  const toml::node* first = nullptr;
  for (const char* kind : kKinds) {
    const toml::node* node = match.find(kind);
    if (node == nullptr) continue;
    if (first != nullptr) {
      diag.error(*node, "match may have only one of \"path\", \"path_prefix\", \"path_regex\"");
      return;
    }
    first = node;
  }
  std::string text;
  if (match.getString("path", text) || match.getString("path_prefix", text)) {
    bool exact = match.find("path") != nullptr;
    const char* key = exact ? "path" : "path_prefix";
    if (text.empty() || text.front() != '/') {
      diag.error(*match.find(key),
                 quoted(key) + " must start with \"/\" (got " + quoted(text) + ")");
      return;
    }
    out.path_kind = exact ? route::PathMatch::Exact : route::PathMatch::Prefix;
    out.path = text;
  } else if (match.getString("path_regex", text)) {
    RE2::Options options;
    options.set_log_errors(false);
    auto regex = std::make_shared<const RE2>(text, options);
    if (!regex->ok()) {
      diag.error(*match.find("path_regex"),
                 "\"path_regex\" is not a valid regular expression: " + regex->error());
      return;
    }
    out.path_kind = route::PathMatch::Regex;
    out.regex = std::move(regex);
  }
}

void readHeaders(TableReader& match, route::RouteMatch& out) {
  const toml::table* headers = match.getTable("headers");
  if (headers == nullptr) return;
  Diagnostics& diag = match.diag();
  for (auto&& [key, value] : *headers) {
    std::string name(key.str());
    if (!isToken(name)) {
      diag.error(key.source(), "header name " + quoted(name) + " is not a valid field name");
      continue;
    }
    route::HeaderMatch want;
    want.name = lower(name);
    if (const auto* s = value.as_string()) {
      want.value = s->get();
    } else if (const auto* b = value.as_boolean(); b != nullptr && b->get()) {
      // Presence is enough.
    } else {
      diag.error(value, "header " + quoted(name) +
                            " must be a string (the exact value) or true (present with any value)");
      continue;
    }
    out.headers.push_back(std::move(want));
  }
}

void readMatch(TableReader& route, route::RouteMatch& out) {
  const toml::table* table = route.getTable("match");
  if (table == nullptr) return;  // matches every request
  Diagnostics& diag = route.diag();
  TableReader match(diag, *table, "in [[routes]] match",
                    {"host", "path", "path_prefix", "path_regex", "methods", "headers"});
  std::string host;
  if (match.getString("host", host)) {
    if (isHostPattern(host)) {
      out.host = lower(host);
    } else {
      diag.error(*match.find("host"),
                 "\"host\" must be a host name like \"api.example.com\" or \"*.example.com\", "
                 "without a port (got " +
                     quoted(host) + ")");
    }
  }
  readPath(match, out);
  std::vector<std::pair<std::string, const toml::node*>> methods;
  if (match.getStringArray("methods", methods)) {
    if (methods.empty()) {
      diag.error(*match.find("methods"),
                 "\"methods\" must not be empty (leave it out to match every method)");
    }
    for (const auto& [method, node] : methods) {
      std::string name = upper(method);
      if (name == "TRACE" || name == "CONNECT") {
        // Answered 405 before routing: a route listing one would never see it.
        diag.error(*node,
                   "\"methods\": " + name + " is always refused with 405, so no route gets it");
      } else if (isToken(method)) {
        out.methods.push_back(std::move(name));
      } else {
        diag.error(*node, "\"methods\": " + quoted(method) + " is not a method name");
      }
    }
  }
  readHeaders(match, out);
}

void readUpgrades(TableReader& route, route::Route& out) {
  std::vector<std::pair<std::string, const toml::node*>> protocols;
  if (!route.getStringArray("upgrades", protocols)) return;  // absent: the default
  out.upgrades.clear();                                      // [] turns upgrades off
  for (const auto& [protocol, node] : protocols) {
    std::string name = lower(protocol);
    if (!isToken(name)) {
      route.diag().error(*node, "\"upgrades\": " + quoted(protocol) +
                                    " is not a protocol name (like \"websocket\")");
    } else if (name == "h2c") {
      route.diag().error(*node,
                         "\"upgrades\": h2c is never tunnelled (the client would speak HTTP/2 "
                         "to the upstream past routes and filters); serve HTTP/2 with "
                         "listeners.http2 instead");
    } else if (std::find(out.upgrades.begin(), out.upgrades.end(), name) == out.upgrades.end()) {
      out.upgrades.push_back(std::move(name));
    }
  }
}

// Whether the route's match has a path_prefix key (valid or not: an invalid one has
// its own error, and prefix_rewrite should not add a second).
bool wrotePathPrefix(const toml::table& route) {
  const toml::node* match = route.get("match");
  return match != nullptr && match->is_table() && match->as_table()->get("path_prefix") != nullptr;
}

}  // namespace

std::vector<ParsedRoute> readRoutes(TableReader& root) {
  std::vector<ParsedRoute> out;
  Diagnostics& diag = root.diag();
  const toml::node* node = root.find("routes");
  if (node == nullptr) return out;
  const toml::array* array = node->as_array();
  if (array == nullptr) {
    diag.error(*node, "\"routes\" must be an array of tables: write each as [[routes]]");
    return out;
  }
  std::map<std::string, int> names;  // name -> line
  for (size_t i = 0; i < array->size(); ++i) {
    const toml::node& element = *array->get(i);
    const toml::table* table = element.as_table();
    if (table == nullptr) {
      diag.error(element, "\"routes\" must be an array of tables: write each as [[routes]]");
      continue;
    }
    TableReader reader(diag, *table, "in [[routes]]",
                       {"name", "service", "match", "prefix_rewrite", "upgrades", "filters"});
    ParsedRoute parsed;
    route::Route& r = parsed.route;
    r.name = "route-" + std::to_string(i);
    if (reader.getString("name", r.name) && r.name.empty()) {
      diag.error(*reader.find("name"), "\"name\" must not be empty");
    }
    const toml::node* name_node = reader.find("name");
    const toml::source_region& name_at = name_node ? name_node->source() : table->source();
    if (auto [it, inserted] = names.emplace(r.name, static_cast<int>(name_at.begin.line));
        !inserted) {
      diag.error(name_at, "duplicate route name " + quoted(r.name) + " (first used on line " +
                              std::to_string(it->second) + ")");
    }
    r.stats_slot = routeStatsSlot(r.name);
    readMatch(reader, r.match);
    parsed.filters = reader.find("filters");
    std::string rewrite;
    if (reader.getString("prefix_rewrite", rewrite)) {
      const toml::node& at = *reader.find("prefix_rewrite");
      if (rewrite.empty() || rewrite.front() != '/') {
        diag.error(at, "\"prefix_rewrite\" must start with \"/\" (got " + quoted(rewrite) + ")");
      } else if (!wrotePathPrefix(*table)) {
        diag.error(at,
                   "route " + quoted(r.name) +
                       ": \"prefix_rewrite\" needs match.path_prefix (it replaces that prefix)");
      } else {
        r.prefix_rewrite = rewrite;
      }
    }
    readUpgrades(reader, r);
    if (reader.getString("service", r.service)) {
      parsed.where = reader.find("service")->source();
    } else {
      if (reader.find("service") == nullptr) {
        diag.error(*table, "route " + quoted(r.name) + ": \"service\" is required");
      }
      continue;  // nothing to route to; no reference to check
    }
    out.push_back(std::move(parsed));
  }
  return out;
}

}  // namespace gw::config::detail
