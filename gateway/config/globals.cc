// The process-wide sections: workers, [admin], [log], [limits], [forwarding].
#include <sched.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

#include "gateway/config/sections.h"

namespace gw::config::detail {
namespace {

constexpr uint32_t kMaxWorkers = 256;
constexpr const char* kDefaultAdminListen = "127.0.0.1:9901";

void readWorkers(TableReader& root, Snapshot& out) {
  out.workers = availableCores();
  const toml::node* node = root.find("workers");
  if (node == nullptr) return;
  if (const auto* s = node->as_string(); s != nullptr && s->get() == "auto") return;
  if (node->is_integer()) {
    root.getUint32("workers", 1, kMaxWorkers, out.workers);
    return;
  }
  std::string reason =
      "\"workers\" must be \"auto\" or an integer between 1 and " + std::to_string(kMaxWorkers);
  if (const auto* s = node->as_string();
      s != nullptr && !s->get().empty() && s->get().size() <= 9 &&
      s->get().find_first_not_of("0123456789") == std::string::npos) {
    reason += " (write " + s->get() + " without quotes)";
  }
  root.diag().error(*node, std::move(reason));
}

bool isLoopback(const net::SocketAddress& address) {
  static const net::Cidr v4 = *net::parseCidr("127.0.0.0/8");
  static const net::Cidr v6 = *net::parseCidr("::1/128");
  return v4.contains(address) || v6.contains(address);
}

void readAdmin(TableReader& root, Admin& out) {
  out.listen = kDefaultAdminListen;
  out.address = net::parseSocketAddress(out.listen);
  const toml::table* table = root.getTable("admin");
  if (table == nullptr) return;
  TableReader admin(root.diag(), *table, "in [admin]", {"listen", "token", "token_file"});
  admin.getString("listen", out.listen);
  std::string token_file;
  bool has_token = admin.getString("token", out.token);
  if (admin.getString("token_file", token_file)) {
    if (has_token) {
      admin.diag().error(*admin.find("token_file"), "set \"token\" or \"token_file\", not both");
    } else if (std::FILE* f = std::fopen(token_file.c_str(), "rb")) {
      char buffer[4096];
      size_t n = std::fread(buffer, 1, sizeof buffer, f);
      std::fclose(f);
      out.token.assign(buffer, n);
      while (!out.token.empty() &&
             (out.token.back() == '\n' || out.token.back() == '\r' || out.token.back() == ' ')) {
        out.token.pop_back();
      }
      if (out.token.empty()) {
        admin.diag().error(*admin.find("token_file"),
                           "token file " + quoted(token_file) + " is empty");
      }
    } else {
      admin.diag().error(*admin.find("token_file"), "cannot read token file " + quoted(token_file) +
                                                        ": " + std::strerror(errno));
    }
  }
  if (has_token && out.token.empty()) {
    admin.diag().error(*admin.find("token"), "\"token\" must not be empty (omit it for no token)");
  }
  for (char c : out.token) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      admin.diag().error(*table, "the admin token must be printable ASCII without spaces");
      break;
    }
  }
  if (out.listen.empty()) {
    out.address.reset();  // admin disabled
    return;
  }
  out.address = net::parseSocketAddress(out.listen);
  const toml::node* listen_at = admin.find("listen");
  if (!out.address) {
    admin.diag().error(listen_at ? *listen_at : static_cast<const toml::node&>(*table),
                       "\"listen\" must be a numeric IP:port, e.g. \"127.0.0.1:9901\", or \"\" "
                       "to disable the admin listener (got " +
                           quoted(out.listen) + ")");
  } else if (!isLoopback(*out.address) && out.token.empty()) {
    // The admin API can flip traffic and reload config: never open it to a network
    // without a credential.
    admin.diag().error(listen_at ? *listen_at : static_cast<const toml::node&>(*table),
                       "the admin listener on a non-loopback address " + quoted(out.listen) +
                           " needs a bearer token: set \"token\" or \"token_file\" in [admin]");
  }
}

void readLog(TableReader& root, Log& out) {
  const toml::table* table = root.getTable("log");
  if (table == nullptr) return;
  TableReader log(root.diag(), *table, "in [log]", {"level"});
  std::string level;
  if (!log.getString("level", level)) return;
  if (level == "debug" || level == "info" || level == "warn" || level == "error") {
    out.level = level;
    return;
  }
  log.diag().error(*log.find("level"),
                   "\"level\" must be one of debug, info, warn, error (got " + quoted(level) + ")");
}

void readForwarding(TableReader& root, Forwarding& out) {
  const toml::table* table = root.getTable("forwarding");
  if (table == nullptr) return;
  TableReader fwd(
      root.diag(), *table, "in [forwarding]",
      {"x_forwarded_for", "x_forwarded_proto", "x_forwarded_host", "via", "trusted_proxies"});
  fwd.getBool("x_forwarded_for", out.x_forwarded_for);
  fwd.getBool("x_forwarded_proto", out.x_forwarded_proto);
  fwd.getBool("x_forwarded_host", out.x_forwarded_host);
  fwd.getBool("via", out.via);
  std::vector<std::pair<std::string, const toml::node*>> proxies;
  if (!fwd.getStringArray("trusted_proxies", proxies)) return;
  for (const auto& [text, node] : proxies) {
    if (auto cidr = net::parseCidr(text)) {
      out.trusted_proxies.push_back(*cidr);
    } else {
      fwd.diag().error(*node, "\"trusted_proxies\": invalid address range " + quoted(text) +
                                  " (e.g. \"10.0.0.0/8\" or \"::1\")");
    }
  }
}

}  // namespace

uint32_t availableCores() {
  unsigned count = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) count = static_cast<unsigned>(CPU_COUNT(&set));
  if (count == 0) count = std::thread::hardware_concurrency();
  if (count == 0) count = 1;
  return count > kMaxWorkers ? kMaxWorkers : count;
}

const std::vector<std::string_view>& limitKeys() {
  static const std::vector<std::string_view> kKeys = {
      "max_header_bytes", "max_headers",   "max_body",     "header_read_timeout",
      "idle_timeout",     "drain_timeout", "drain_spread", "max_connections"};
  return kKeys;
}

void readLimits(TableReader& table, Limits& out) {
  uint64_t header_bytes = 0;
  if (table.getSize("max_header_bytes", 1024, 1024 * 1024, header_bytes)) {
    out.max_header_bytes = static_cast<uint32_t>(header_bytes);
  }
  table.getUint32("max_headers", 1, 1000, out.max_headers);
  table.getSize("max_body", 0, UINT64_MAX, out.max_body);
  table.getDuration("header_read_timeout", 1, out.header_read_timeout_ms);
  table.getDuration("idle_timeout", 1, out.idle_timeout_ms);
  table.getDuration("drain_timeout", 0, out.drain_timeout_ms);
  uint64_t spread = 0;
  if (table.getDuration("drain_spread", 0, spread)) {
    out.drain_spread_ms = static_cast<int64_t>(spread);
  }
  table.getUint32("max_connections", 1, 1'000'000, out.max_connections);
}

void readGlobals(TableReader& root, Snapshot& out) {
  readWorkers(root, out);
  readAdmin(root, out.admin);
  readLog(root, out.log);
  readObservability(root, out);
  if (const toml::table* table = root.getTable("limits")) {
    // shutdown_delay is process-wide: a listener's own limits table cannot set it.
    std::vector<std::string_view> keys = limitKeys();
    keys.push_back("shutdown_delay");
    TableReader limits(root.diag(), *table, "in [limits]", keys);
    readLimits(limits, out.limits);
    limits.getDuration("shutdown_delay", 0, out.shutdown_delay_ms);
  }
  readForwarding(root, out.forwarding);
}

}  // namespace gw::config::detail
