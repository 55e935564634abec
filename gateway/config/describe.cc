#include "gateway/config/describe.h"

#include <map>
#include <set>
#include <sstream>

#include "gateway/config/reader.h"
#include "gateway/config/sources.h"
#include "gateway/core/log.h"

namespace gw::config {
namespace {

// A node as TOML text: the unit of comparison (source positions do not matter).
std::string render(const toml::node* node) {
  if (node == nullptr) return "";
  std::ostringstream out;
  node->visit([&](const auto& value) { out << value; });
  return out.str();
}

std::string shortRender(const toml::node* node) {
  if (node == nullptr) return "(unset)";
  std::string text = render(node);
  for (char& c : text) {
    if (c == '\n') c = ' ';
  }
  return text.size() > 80 ? text.substr(0, 77) + "..." : text;
}

const toml::table* tableAt(const Snapshot& s, std::string_view key) {
  if (!s.document) return nullptr;
  const toml::node* node = s.document->table.get(key);
  return node ? node->as_table() : nullptr;
}

const toml::array* arrayAt(const Snapshot& s, std::string_view key) {
  if (!s.document) return nullptr;
  const toml::node* node = s.document->table.get(key);
  return node ? node->as_array() : nullptr;
}

// "listen: a -> b; limits: changed" for the keys that differ between two tables.
std::string changedKeys(const toml::table& a, const toml::table& b,
                        const std::set<std::string>& skip = {}) {
  std::set<std::string> keys;
  for (const auto& [k, v] : a) keys.insert(std::string(k.str()));
  for (const auto& [k, v] : b) keys.insert(std::string(k.str()));
  std::string out;
  for (const std::string& key : keys) {
    if (skip.count(key)) continue;
    const toml::node* x = a.get(key);
    const toml::node* y = b.get(key);
    if (render(x) == render(y)) continue;
    if (!out.empty()) out += "; ";
    if ((x && (x->is_table() || x->is_array())) || (y && (y->is_table() || y->is_array()))) {
      out += key + ": " + (x == nullptr ? "added" : y == nullptr ? "removed" : "changed");
    } else {
      out += key + ": " + shortRender(x) + " -> " + shortRender(y);
    }
  }
  return out;
}

// Name -> table for an array of tables whose resolved names are `names` (same order).
std::map<std::string, const toml::table*> byName(const toml::array* array,
                                                 const std::vector<std::string>& names) {
  std::map<std::string, const toml::table*> out;
  for (size_t i = 0; i < names.size(); ++i) {
    const toml::table* t = nullptr;
    if (array != nullptr && i < array->size()) t = (*array)[i].as_table();
    out[names[i]] = t;
  }
  return out;
}

void diffFilters(ConfigDiff& diff, const std::string& route, const toml::table* a,
                 const toml::table* b) {
  const toml::array* x = a ? a->get_as<toml::array>("filters") : nullptr;
  const toml::array* y = b ? b->get_as<toml::array>("filters") : nullptr;
  size_t n = std::max(x ? x->size() : 0, y ? y->size() : 0);
  for (size_t i = 0; i < n; ++i) {
    const toml::node* f = x && i < x->size() ? &(*x)[i] : nullptr;
    const toml::node* g = y && i < y->size() ? &(*y)[i] : nullptr;
    if (render(f) == render(g)) continue;
    const toml::node* typed = g ? g : f;
    std::string type = "?";
    if (typed->is_table())
      type = typed->as_table()->get_as<std::string>("type")
                 ? typed->as_table()->get_as<std::string>("type")->get()
                 : "?";
    std::string name = route + "#" + std::to_string(i + 1) + " (" + type + ")";
    std::string change = f == nullptr ? "added" : g == nullptr ? "removed" : "changed";
    std::string detail =
        f && g && f->is_table() && g->is_table() ? changedKeys(*f->as_table(), *g->as_table()) : "";
    diff.changes.push_back({"filter", name, change, detail});
  }
}

template <typename Named>
void diffNamed(ConfigDiff& diff, const char* kind, const std::map<std::string, Named>& a,
               const std::map<std::string, Named>& b,
               void (*each)(ConfigDiff&, const std::string&, const Named*, const Named*)) {
  std::set<std::string> names;
  for (const auto& [n, v] : a) names.insert(n);
  for (const auto& [n, v] : b) names.insert(n);
  for (const std::string& n : names) {
    auto x = a.find(n);
    auto y = b.find(n);
    if (x == a.end()) {
      diff.changes.push_back({kind, n, "added", ""});
    } else if (y == b.end()) {
      diff.changes.push_back({kind, n, "removed", ""});
    }
    each(diff, n, x == a.end() ? nullptr : &x->second, y == b.end() ? nullptr : &y->second);
  }
}

std::string endpointsOf(const Pool& pool) {
  std::string out;
  for (const Endpoint& e : pool.endpoints) out += (out.empty() ? "" : " ") + e.key;
  if (pool.protocol != Pool::Protocol::Http1) {
    out += std::string(" protocol=") + protocolName(pool.protocol) +
           " max_streams_per_connection=" + std::to_string(pool.max_streams_per_connection);
  }
  return out;
}

void appendStrings(std::string& out, const std::vector<std::string>& items) {
  out += "[";
  for (size_t i = 0; i < items.size(); ++i) {
    out += i == 0 ? "\"" : ",\"";
    log::appendJsonEscaped(out, items[i]);
    out += "\"";
  }
  out += "]";
}

}  // namespace

std::string effectiveConfigJson(const Snapshot& snapshot) {
  if (!snapshot.document) return "{}";
  toml::table table = snapshot.document->table;
  // Show the active pool the workers serve (an admin-API flip is not in the file).
  if (toml::table* services = table.get_as<toml::table>("services")) {
    for (const auto& [name, service] : snapshot.services) {
      toml::table* t = services->get_as<toml::table>(name);
      if (t == nullptr) continue;
      t->insert_or_assign("active", service.active);
      // Who can read /config should not be able to forge every endpoint's sticky id.
      toml::table* sticky = t->get_as<toml::table>("sticky");
      if (sticky != nullptr && sticky->contains("secret")) {
        sticky->insert_or_assign("secret", "(redacted)");
      }
    }
  }
  std::ostringstream out;
  out << toml::json_formatter{table};
  return out.str();
}

ConfigDiff diffSnapshots(const Snapshot& running, const Snapshot& next) {
  ConfigDiff diff;
  for (const char* key :
       {"workers", "admin", "log", "access_log", "metrics", "tracing", "limits", "forwarding"}) {
    const toml::node* x = running.document ? running.document->table.get(key) : nullptr;
    const toml::node* y = next.document ? next.document->table.get(key) : nullptr;
    if (render(x) == render(y)) continue;
    std::string detail = x && y && x->is_table() && y->is_table()
                             ? changedKeys(*x->as_table(), *y->as_table())
                             : shortRender(x) + " -> " + shortRender(y);
    diff.changes.push_back({"setting", key,
                            x == nullptr   ? "added"
                            : y == nullptr ? "removed"
                                           : "changed",
                            detail});
  }

  // Listeners, by name.
  std::vector<std::string> ln_a, ln_b;
  std::map<std::string, const Listener*> la, lb;
  for (const Listener& l : running.listeners) ln_a.push_back(l.name), la[l.name] = &l;
  for (const Listener& l : next.listeners) ln_b.push_back(l.name), lb[l.name] = &l;
  auto lta = byName(arrayAt(running, "listeners"), ln_a);
  auto ltb = byName(arrayAt(next, "listeners"), ln_b);
  for (const auto& [name, l] : la) {
    auto other = lb.find(name);
    if (other == lb.end()) {
      diff.changes.push_back({"listener", name, "removed", "was " + l->listen});
      diff.drained_listeners.push_back(name);
    } else {
      std::string detail =
          lta[name] && ltb[name] ? changedKeys(*lta[name], *ltb[name]) : std::string();
      if (!detail.empty()) diff.changes.push_back({"listener", name, "changed", detail});
      if (other->second->listen != l->listen) diff.drained_listeners.push_back(name);
    }
  }
  for (const auto& [name, l] : lb) {
    if (la.count(name) == 0) diff.changes.push_back({"listener", name, "added", l->listen});
  }

  // Routes, by name; their filters one by one.
  std::vector<std::string> rn_a, rn_b;
  if (running.router)
    for (const auto& r : running.router->routes()) rn_a.push_back(r.name);
  if (next.router)
    for (const auto& r : next.router->routes()) rn_b.push_back(r.name);
  auto rta = byName(arrayAt(running, "routes"), rn_a);
  auto rtb = byName(arrayAt(next, "routes"), rn_b);
  diffNamed<const toml::table*>(diff, "route", rta, rtb,
                                [](ConfigDiff& d, const std::string& name,
                                   const toml::table* const* a, const toml::table* const* b) {
                                  const toml::table* x = a ? *a : nullptr;
                                  const toml::table* y = b ? *b : nullptr;
                                  if (x && y) {
                                    std::string detail = changedKeys(*x, *y, {"filters"});
                                    if (!detail.empty())
                                      d.changes.push_back({"route", name, "changed", detail});
                                  }
                                  diffFilters(d, name, x, y);
                                });
  if (rn_a != rn_b && std::set<std::string>(rn_a.begin(), rn_a.end()) ==
                          std::set<std::string>(rn_b.begin(), rn_b.end())) {
    diff.changes.push_back({"route", "(order)", "changed", "routes are matched in a new order"});
  }

  // Services, their pools and the active pool.
  const toml::table* sa = tableAt(running, "services");
  const toml::table* sb = tableAt(next, "services");
  for (const auto& [name, service] : running.services) {
    const Service* other = next.findService(name);
    if (other == nullptr) {
      diff.changes.push_back({"service", name, "removed", ""});
      continue;
    }
    const toml::table* x = sa ? sa->get_as<toml::table>(name) : nullptr;
    const toml::table* y = sb ? sb->get_as<toml::table>(name) : nullptr;
    std::string detail = x && y ? changedKeys(*x, *y, {"pools", "active"}) : "";
    if (service.active != other->active) {
      detail = "active: " + service.active + " -> " + other->active +
               (detail.empty() ? "" : "; " + detail);
      diff.switched_services.push_back(name);
    }
    if (!detail.empty()) diff.changes.push_back({"service", name, "changed", detail});
    for (const auto& [pool_name, pool] : service.pools) {
      auto it = other->pools.find(pool_name);
      std::string id = name + "/" + pool_name;
      if (it == other->pools.end()) {
        diff.changes.push_back({"pool", id, "removed", endpointsOf(pool)});
      } else if (endpointsOf(pool) != endpointsOf(it->second)) {
        diff.changes.push_back(
            {"pool", id, "changed", endpointsOf(pool) + " -> " + endpointsOf(it->second)});
      }
    }
    for (const auto& [pool_name, pool] : other->pools) {
      if (service.pools.count(pool_name) == 0) {
        diff.changes.push_back({"pool", name + "/" + pool_name, "added", endpointsOf(pool)});
      }
    }
  }
  for (const auto& [name, service] : next.services) {
    if (running.findService(name) == nullptr) {
      diff.changes.push_back({"service", name, "added", "active: " + service.active});
    }
  }
  return diff;
}

std::string diffToText(const ConfigDiff& diff) {
  std::string out;
  for (const ConfigChange& c : diff.changes) {
    out += c.change == "added" ? "+ " : c.change == "removed" ? "- " : "~ ";
    out += c.kind + " " + c.name;
    if (!c.detail.empty()) out += ": " + c.detail;
    out += "\n";
  }
  if (diff.changes.empty()) out += "no changes\n";
  std::map<std::string, int> per_kind;
  for (const ConfigChange& c : diff.changes) per_kind[c.kind]++;
  out += "blast radius:";
  if (per_kind.empty()) out += " none";
  for (const auto& [kind, n] : per_kind)
    out += " " + std::to_string(n) + " " + kind + (n == 1 ? "" : "s");
  out += "\n";
  for (const std::string& l : diff.drained_listeners) {
    out += "  listener " + l + " closes its socket: its open connections drain\n";
  }
  for (const std::string& s : diff.switched_services) {
    out += "  service " + s + " sends new requests to another pool\n";
  }
  return out;
}

std::string diffToJsonOpen(const ConfigDiff& diff) {
  std::string out = "{\"changes\":[";
  for (size_t i = 0; i < diff.changes.size(); ++i) {
    const ConfigChange& c = diff.changes[i];
    if (i != 0) out += ",";
    out += "{\"kind\":\"" + c.kind + "\",\"name\":\"";
    log::appendJsonEscaped(out, c.name);
    out += "\",\"change\":\"" + c.change + "\",\"detail\":\"";
    log::appendJsonEscaped(out, c.detail);
    out += "\"}";
  }
  out += "],\"drained_listeners\":";
  appendStrings(out, diff.drained_listeners);
  out += ",\"switched_services\":";
  appendStrings(out, diff.switched_services);
  return out;
}

}  // namespace gw::config
