// [services.NAME]: what routes send traffic to. A service has pools (blue, green,
// ...) of endpoints and names the active one. Endpoint hostnames are resolved here,
// with blocking getaddrinfo: the loader runs on the control thread, never a worker.
#include <netdb.h>
#include <sys/socket.h>

#include <cstring>
#include <map>
#include <set>

#include "gateway/config/sections.h"

namespace gw::config::detail {
namespace {

// Resolves each hostname once per load, however many endpoints name it.
class Resolver {
 public:
  // The host's addresses, or an empty vector with `error` set.
  const std::vector<net::SocketAddress>& resolve(const std::string& host, std::string& error) {
    auto it = cache_.find(host);
    if (it == cache_.end()) it = cache_.emplace(host, lookup(host)).first;
    error = it->second.error;
    return it->second.addresses;
  }

 private:
  struct Entry {
    std::vector<net::SocketAddress> addresses;
    std::string error;
  };

  static Entry lookup(const std::string& host) {
    Entry entry;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    int rc = getaddrinfo(host.c_str(), nullptr, &hints, &list);
    if (rc != 0) {
      entry.error = gai_strerror(rc);
      return entry;
    }
    for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
      if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
      if (ai->ai_addrlen > sizeof(net::SocketAddress::Storage)) continue;
      net::SocketAddress address;
      std::memcpy(&address.storage, ai->ai_addr, ai->ai_addrlen);
      bool seen = false;
      for (const auto& a : entry.addresses) seen = seen || a == address;
      if (!seen) entry.addresses.push_back(address);
    }
    freeaddrinfo(list);
    if (entry.addresses.empty()) entry.error = "no IPv4 or IPv6 address";
    return entry;
  }

  std::map<std::string, Entry> cache_;
};

void setPort(net::SocketAddress& address, uint16_t port) {
  if (address.family() == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&address.storage)->sin_port = htons(port);
  } else if (address.family() == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&address.storage)->sin6_port = htons(port);
  }
}

// "10.0.0.1:80", "[::1]:80" or "backend.local:80" into an endpoint; false on error.
bool readEndpoint(Diagnostics& diag, Resolver& resolver, const std::string& text,
                  const toml::node& at, Endpoint& out) {
  auto host_port = net::splitHostPort(text);
  if (!host_port) {
    diag.error(at, "endpoint " + quoted(text) + " must be \"host:port\" or \"[IPv6]:port\"");
    return false;
  }
  if (host_port->port == 0) {
    diag.error(at, "endpoint " + quoted(text) + ": the port must not be 0");
    return false;
  }
  out.key = text;
  out.host = host_port->host;
  out.port = host_port->port;
  if (auto numeric = net::parseIpPort(out.host, out.port)) {
    out.addresses.push_back(*numeric);
    return true;
  }
  if (text.front() == '[') {
    diag.error(at, "endpoint " + quoted(text) + ": " + quoted(out.host) +
                       " between [ ] must be an IPv6 address");
    return false;
  }
  std::string error;
  out.addresses = resolver.resolve(out.host, error);
  if (out.addresses.empty()) {
    diag.error(at, "endpoint " + quoted(text) + " could not be resolved: " + error);
    return false;
  }
  for (net::SocketAddress& address : out.addresses) setPort(address, out.port);
  return true;
}

// One element of `endpoints`: "host:port", or { address = "host:port", weight = 3 }.
bool readEndpointEntry(Diagnostics& diag, const std::string& section, const toml::node& element,
                       std::string& text, uint32_t& weight) {
  if (const auto* s = element.as_string()) {
    text = s->get();
    return true;
  }
  const toml::table* table = element.as_table();
  if (table == nullptr) {
    diag.error(element,
               "\"endpoints\" elements must be \"host:port\" strings or "
               "{ address = \"host:port\", weight = N } tables");
    return false;
  }
  TableReader entry(diag, *table, section + " endpoint", {"address", "weight"});
  entry.getUint32("weight", 1, 1000, weight);
  if (!entry.getString("address", text)) {
    if (entry.find("address") == nullptr) {
      diag.error(element, "endpoint table needs address = \"host:port\"");
    }
    return false;
  }
  return true;
}

// `protocol` and `max_streams_per_connection`.
void readPoolProtocol(TableReader& pool, const std::string& where, Pool& out) {
  Diagnostics& diag = pool.diag();
  std::string protocol;
  if (pool.getString("protocol", protocol)) {
    const toml::node& node = *pool.find("protocol");
    if (protocol == "http1") {
      out.protocol = Pool::Protocol::Http1;
    } else if (protocol == "h2c") {
      out.protocol = Pool::Protocol::H2c;
      if (out.tls != nullptr) {
        diag.error(node, where + ": protocol \"h2c\" is cleartext; with tls use protocol = \"h2\"");
      }
    } else if (protocol == "h2") {
      out.protocol = Pool::Protocol::H2;
      if (pool.find("tls") == nullptr) {
        diag.error(node, where + ": protocol \"h2\" needs tls (for cleartext use \"h2c\")");
      }
    } else {
      diag.error(
          node, where + ": protocol must be \"http1\", \"h2c\" or \"h2\", not " + quoted(protocol));
    }
  }
  pool.getUint32("max_streams_per_connection", 1, 1'000'000, out.max_streams_per_connection);
}

void readPool(Diagnostics& diag, Resolver& resolver, const std::string& service,
              const std::string& name, const toml::table& table, Pool& out) {
  std::string where = "service " + quoted(service) + " pool " + quoted(name);
  std::string section = "in [services." + service + ".pools." + name + "]";
  TableReader pool(diag, table, section,
                   {"endpoints", "tls", "protocol", "max_streams_per_connection"});
  readPoolTls(pool, where, out);
  readPoolProtocol(pool, where, out);
  const toml::node* list = pool.find("endpoints");
  if (list == nullptr) {
    diag.error(table, where + ": \"endpoints\" is required, e.g. endpoints = [\"127.0.0.1:9001\"]");
    return;
  }
  const toml::array* array = list->as_array();
  if (array == nullptr) {
    diag.error(*list, "\"endpoints\" must be an array of strings");
    return;
  }
  if (array->empty()) {
    diag.error(*list, where + ": needs at least one endpoint");
    return;
  }
  std::set<std::string> keys;
  for (const toml::node& element : *array) {
    std::string text;
    uint32_t weight = 1;
    if (!readEndpointEntry(diag, section, element, text, weight)) continue;
    if (!keys.insert(text).second) {
      diag.error(element, where + ": endpoint " + quoted(text) + " is listed twice");
      continue;
    }
    Endpoint endpoint;
    endpoint.weight = weight;
    if (readEndpoint(diag, resolver, text, element, endpoint)) {
      out.endpoints.push_back(std::move(endpoint));
    }
  }
}

void readService(Diagnostics& diag, Resolver& resolver, const std::string& name,
                 const toml::table& table, Service& out) {
  std::string where = "service " + quoted(name);
  std::vector<std::string_view> keys = {"active",
                                        "lb",
                                        "upstream_connect_timeout",
                                        "upstream_response_timeout",
                                        "max_idle_connections",
                                        "idle_connection_timeout",
                                        "pools",
                                        "split",
                                        "canary"};
  keys.insert(keys.end(), balancingKeys().begin(), balancingKeys().end());
  TableReader service(diag, table, "in [services." + name + "]", std::move(keys));
  readBalancing(service, name, out);
  service.getDuration("upstream_connect_timeout", 1, out.upstream_connect_timeout_ms);
  service.getDuration("upstream_response_timeout", 1, out.upstream_response_timeout_ms);
  service.getUint32("max_idle_connections", 0, 10'000, out.max_idle_connections);
  service.getDuration("idle_connection_timeout", 1, out.idle_connection_timeout_ms);

  std::vector<std::string> pool_names;
  if (const toml::table* pools = service.getTable("pools")) {
    for (auto&& [key, value] : *pools) {
      std::string pool_name(key.str());
      pool_names.push_back(pool_name);
      Pool& pool = out.pools[pool_name];  // present even when invalid: see readServices
      pool.name = pool_name;
      pool.stats_slot = poolStatsSlot(name, pool_name);
      if (const toml::table* pool_table = value.as_table()) {
        readPool(diag, resolver, name, pool_name, *pool_table, pool);
      } else {
        diag.error(value, where + ": pool " + quoted(pool_name) + " must be a table ([services." +
                              name + ".pools." + pool_name + "])");
      }
    }
  }
  if (pool_names.empty()) {
    if (service.find("pools") == nullptr || service.find("pools")->is_table()) {
      diag.error(table, where + ": needs at least one pool, e.g. [services." + name +
                            ".pools.main] with endpoints = [\"127.0.0.1:9001\"]");
    }
    return;
  }
  if (service.getString("active", out.active)) {
    if (out.pools.count(out.active) == 0) {
      diag.error(*service.find("active"), where + ": active pool " + quoted(out.active) +
                                              " does not exist (pools: " + joined(pool_names) +
                                              ")");
    }
  } else if (service.find("active") == nullptr) {
    if (pool_names.size() == 1) {
      out.active = pool_names.front();
    } else {
      diag.error(table, where +
                            ": \"active\" is required when there is more than one pool (pools: " +
                            joined(pool_names) + ")");
    }
  }
  if (out.pools.count(out.active) != 0) readTrafficSplit(service, name, out);
}

}  // namespace

void readServices(TableReader& root, std::map<std::string, Service>& out) {
  const toml::table* services = root.getTable("services");
  if (services == nullptr) return;
  Diagnostics& diag = root.diag();
  Resolver resolver;
  for (auto&& [key, value] : *services) {
    std::string name(key.str());
    Service& service = out[name];
    service.name = name;
    if (const toml::table* table = value.as_table()) {
      readService(diag, resolver, name, *table, service);
    } else {
      diag.error(value, "service " + quoted(name) + " must be a table ([services." + name + "])");
    }
  }
}

}  // namespace gw::config::detail

namespace gw::config {

const char* protocolName(Pool::Protocol protocol) {
  switch (protocol) {
    case Pool::Protocol::H2c:
      return "h2c";
    case Pool::Protocol::H2:
      return "h2";
    case Pool::Protocol::Http1:
      break;
  }
  return "http1";
}

}  // namespace gw::config
