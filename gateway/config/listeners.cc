// [[listeners]]: where the gateway accepts connections, each with its limits.
#include <arpa/inet.h>

#include <cstring>
#include <map>

#include "gateway/config/sections.h"

namespace gw::config::detail {
namespace {

bool isWildcard(const net::SocketAddress& a) {
  if (a.family() == AF_INET) {
    return reinterpret_cast<const sockaddr_in*>(&a.storage)->sin_addr.s_addr == htonl(INADDR_ANY);
  }
  if (a.family() == AF_INET6) {
    const in6_addr& ip = reinterpret_cast<const sockaddr_in6*>(&a.storage)->sin6_addr;
    return std::memcmp(&ip, &in6addr_any, sizeof ip) == 0;
  }
  return false;
}

// Two sockets that cannot both be bound: same family and port, and the same IP or a
// wildcard on either side. Port 0 asks the kernel for a fresh port, so never clashes.
bool conflicts(const net::SocketAddress& a, const net::SocketAddress& b) {
  if (a.family() != b.family() || a.port() != b.port() || a.port() == 0) return false;
  return a.ipString() == b.ipString() || isWildcard(a) || isWildcard(b);
}

struct Seen {
  std::string name;
  int line = 0;
};

std::string lineNote(int line) {
  return line > 0 ? " (first used on line " + std::to_string(line) + ")" : "";
}

// `http2 = true`, or a table of limits (which turns HTTP/2 on unless `enabled = false`).
void readHttp2(TableReader& listener, Listener& out) {
  const toml::node* node = listener.find("http2");
  if (node == nullptr || !node->is_table()) {
    listener.getBool("http2", out.http2);
    return;
  }
  TableReader t(listener.diag(), *node->as_table(), "in [[listeners]] http2",
                {"enabled", "max_concurrent_streams", "max_frame_size", "stream_window",
                 "connection_window", "flood_window", "max_resets", "max_control_frames",
                 "max_empty_frames", "max_continuations"});
  out.http2 = true;
  t.getBool("enabled", out.http2);
  Http2Settings& h = out.http2_settings;
  t.getUint32("max_concurrent_streams", 1, 10'000, h.max_concurrent_streams);
  // RFC 9113 §6.5.2: frame sizes 2^14 .. 2^24-1, windows up to 2^31-1.
  uint64_t size = h.max_frame_size;
  if (t.getSize("max_frame_size", 16'384, 16'777'215, size))
    h.max_frame_size = static_cast<uint32_t>(size);
  size = h.stream_window;
  if (t.getSize("stream_window", 65'535, 0x7fffffff, size))
    h.stream_window = static_cast<uint32_t>(size);
  size = h.connection_window;
  if (t.getSize("connection_window", 65'535, 0x7fffffff, size)) {
    h.connection_window = static_cast<uint32_t>(size);
  }
  t.getDuration("flood_window", 1'000, h.flood_window_ms);
  t.getUint32("max_resets", 1, 1'000'000, h.max_resets);
  t.getUint32("max_control_frames", 1, 1'000'000, h.max_control_frames);
  t.getUint32("max_empty_frames", 1, 1'000'000, h.max_empty_frames);
  t.getUint32("max_continuations", 1, 1'000, h.max_continuations);
}

// Reads one [[listeners]] table into `out`; false when it has no usable address.
bool readListener(TableReader& root, const toml::table& table, size_t index, const Limits& defaults,
                  Listener& out) {
  Diagnostics& diag = root.diag();
  TableReader listener(diag, table, "in [[listeners]]",
                       {"name", "listen", "limits", "tls", "redirect_to_https", "http2"});
  out.name = "listener-" + std::to_string(index);
  if (listener.getString("name", out.name) && out.name.empty()) {
    diag.error(*listener.find("name"), "\"name\" must not be empty");
  }
  out.limits = defaults;
  if (const toml::table* limits_table = listener.getTable("limits")) {
    TableReader limits(diag, *limits_table, "in [[listeners]] limits", limitKeys());
    readLimits(limits, out.limits);
  }
  readHttp2(listener, out);  // before the TLS context: it decides the ALPN list
  readListenerTls(listener, out);
  readRedirectToHttps(listener, out);
  if (!listener.getString("listen", out.listen)) {
    if (listener.find("listen") == nullptr) {
      diag.error(table, "listener " + quoted(out.name) +
                            ": \"listen\" is required, e.g. listen = \"0.0.0.0:8080\"");
    }
    return false;
  }
  auto address = net::parseSocketAddress(out.listen);
  if (!address) {
    diag.error(*listener.find("listen"),
               "\"listen\" must be a numeric IP:port, e.g. \"0.0.0.0:8080\" or \"[::]:8080\" "
               "(got " +
                   quoted(out.listen) + ")");
    return false;
  }
  out.address = *address;
  return true;
}

}  // namespace

void readListeners(TableReader& root, Snapshot& out) {
  Diagnostics& diag = root.diag();
  const toml::node* node = root.find("listeners");
  if (node == nullptr) {
    diag.errorAtFile(
        "at least one [[listeners]] is required, e.g. [[listeners]] with "
        "listen = \"0.0.0.0:8080\"");
    return;
  }
  const toml::array* array = node->as_array();
  if (array == nullptr) {
    diag.error(*node, "\"listeners\" must be an array of tables: write each as [[listeners]]");
    return;
  }
  if (array->empty()) {
    diag.error(*node, "at least one [[listeners]] is required");
    return;
  }
  std::map<std::string, int> names;  // name -> line
  for (size_t i = 0; i < array->size(); ++i) {
    const toml::node& element = *array->get(i);
    const toml::table* table = element.as_table();
    if (table == nullptr) {
      diag.error(element, "\"listeners\" must be an array of tables: write each as [[listeners]]");
      continue;
    }
    Listener listener;
    bool has_address = readListener(root, *table, i, out.limits, listener);
    const toml::node* name_node = table->get("name");
    const toml::source_region& name_at = name_node ? name_node->source() : table->source();
    auto [it, inserted] = names.emplace(listener.name, static_cast<int>(name_at.begin.line));
    if (!inserted) {
      diag.error(name_at,
                 "duplicate listener name " + quoted(listener.name) + lineNote(it->second));
    }
    if (!has_address) continue;
    const toml::node* listen_node = table->get("listen");
    for (size_t j = 0; j < out.listeners.size(); ++j) {
      const Listener& other = out.listeners[j];
      if (!conflicts(listener.address, other.address)) continue;
      diag.error(*listen_node, "listener " + quoted(listener.name) + ": " +
                                   quoted(listener.listen) + " conflicts with listener " +
                                   quoted(other.name) + " at " + quoted(other.listen));
    }
    if (out.admin.address && conflicts(listener.address, *out.admin.address)) {
      diag.error(*listen_node, "listener " + quoted(listener.name) + ": " +
                                   quoted(listener.listen) + " conflicts with the admin listener " +
                                   quoted(out.admin.listen));
    }
    out.listeners.push_back(std::move(listener));
  }
}

}  // namespace gw::config::detail
