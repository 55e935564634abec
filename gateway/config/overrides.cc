// Flags and GATEWAY_* environment variables on top of the TOML (sidecars, containers),
// and quick mode (no file at all). Each override is written as a tiny TOML document
// whose "file name" is the flag or variable, parsed, and grafted into the merged table
// before validation: the loader then checks it like the file, and its errors read
// "GATEWAY_LISTEN: \"listen\" must be a numeric IP:port ..." (no line: see
// Diagnostics::addOrigin).
//
//   listen            the only [[listeners]]' listen (creates listener "sidecar" when the
//                     file has none; an error when it has several)
//   upstream          comma-separated endpoints of the only pool of the only service
//                     (creates route "default" -> service "upstream", pool "main" when the
//                     file has no service; an error when it has several services or pools)
//   workers           workers
//   admin             [admin] listen ("" disables it)
//   admin_token       [admin] token (replaces a token_file from the file)
//   admin_token_file  [admin] token_file (replaces a token from the file)
//   log_level         [log] level
//   shutdown_delay    [limits] shutdown_delay
//   drain_timeout     [limits] drain_timeout
//   access_log        [access_log] path ("stdout", a file, or "off": enabled = false)
//   access_log_format [access_log] format (json, common, combined)
#include <cstdio>

#include "gateway/config/sections.h"

namespace gw::config {
namespace {

// A TOML basic string: "..." with quotes, backslashes and control characters escaped.
std::string tomlString(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(u));
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

// A count the loader can range-check as an integer; anything else stays a string,
// so the loader reports it as a bad value instead of a TOML syntax error.
bool isSmallNumber(std::string_view text) {
  if (text.empty() || text.size() > 9) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// ["a", "b"] from "a, b" (empty parts dropped).
std::string endpointArray(std::string_view text) {
  std::string out = "[";
  bool first = true;
  while (true) {
    size_t comma = text.find(',');
    std::string_view part = trimmed(text.substr(0, comma));
    if (!part.empty()) {
      if (!first) out += ", ";
      out += tomlString(part);
      first = false;
    }
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out + "]";
}

// Moves `node` into `into` under `key` (replacing what was there), keeping its source.
void put(toml::table& into, std::string_view key, toml::node& node) {
  node.visit([&](auto&& value) { into.insert_or_assign(key, std::move(value)); });
}

// The table `key` of `root`, created (or replacing a non-table) when needed.
toml::table& tableAt(toml::table& root, std::string_view key) {
  toml::node* node = root.get(key);
  if (node == nullptr || !node->is_table()) {
    root.insert_or_assign(key, toml::table{});
    node = root.get(key);
  }
  return *node->as_table();
}

size_t countOf(const toml::table& root, std::string_view key) {
  const toml::node* node = root.get(key);
  if (node == nullptr) return 0;
  if (const toml::array* a = node->as_array()) return a->size();
  if (const toml::table* t = node->as_table()) return t->size();
  return 1;
}

class Applier {
 public:
  Applier(detail::Diagnostics& diag, toml::table& root) : diag_(diag), root_(root) {}

  void apply(const Override& o) {
    diag_.addOrigin(o.origin);
    if (o.key == "listen") return listen(o);
    if (o.key == "upstream") return upstream(o);
    if (o.key == "workers") {
      return set(root_, "workers", o, isSmallNumber(o.value) ? o.value : tomlString(o.value));
    }
    if (o.key == "admin") return set(tableAt(root_, "admin"), "listen", o, tomlString(o.value));
    if (o.key == "admin_token" || o.key == "admin_token_file") {
      toml::table& admin = tableAt(root_, "admin");
      admin.erase(o.key == "admin_token" ? "token_file" : "token");
      return set(admin, o.key == "admin_token" ? "token" : "token_file", o, tomlString(o.value));
    }
    if (o.key == "log_level") return set(tableAt(root_, "log"), "level", o, tomlString(o.value));
    if (o.key == "access_log") {
      toml::table& log = tableAt(root_, "access_log");
      if (o.value == "off") return set(log, "enabled", o, "false");
      set(log, "enabled", o, "true");
      return set(log, "path", o, tomlString(o.value));
    }
    if (o.key == "access_log_format") {
      return set(tableAt(root_, "access_log"), "format", o, tomlString(o.value));
    }
    if (o.key == "shutdown_delay" || o.key == "drain_timeout") {
      return set(tableAt(root_, "limits"), o.key, o, tomlString(o.value));
    }
    diag_.errorAtFile("unknown override " + detail::quoted(o.key) + " from " + o.origin);
  }

 private:
  // Parses `text` as a TOML document named after the override.
  bool parse(const Override& o, const std::string& text, toml::table& out) {
    toml::parse_result parsed = toml::parse(text, std::string_view(o.origin));
    if (!parsed) {  // not expected: every value is quoted or a plain number
      diag_.error(parsed.error().source(), std::string(parsed.error().description()));
      return false;
    }
    out = std::move(parsed.table());
    return true;
  }

  void set(toml::table& into, std::string_view key, const Override& o, const std::string& literal) {
    toml::table doc;
    if (parse(o, "v = " + literal + "\n", doc)) put(into, key, *doc.get("v"));
  }

  // An error about the override as a whole: "GATEWAY_LISTEN: reason".
  void refuse(const Override& o, std::string reason) {
    toml::table doc;
    if (parse(o, "v = " + tomlString(o.value) + "\n", doc)) diag_.error(*doc.get("v"), reason);
  }

  void listen(const Override& o) {
    size_t count = countOf(root_, "listeners");
    toml::array* listeners = root_.get("listeners") ? root_.get("listeners")->as_array() : nullptr;
    if (count == 0) {
      toml::table doc;
      if (parse(o, "[[listeners]]\nname = \"sidecar\"\nlisten = " + tomlString(o.value) + "\n",
                doc)) {
        put(root_, "listeners", *doc.get("listeners"));
      }
    } else if (count == 1 && listeners != nullptr && (*listeners)[0].is_table()) {
      set(*(*listeners)[0].as_table(), "listen", o, tomlString(o.value));
    } else {
      refuse(o, "the config has " + std::to_string(count) +
                    " listeners; set their addresses in the file (this sets the only one)");
    }
  }

  void upstream(const Override& o) {
    std::string endpoints = endpointArray(o.value);
    toml::table* services = root_.get("services") ? root_.get("services")->as_table() : nullptr;
    if (services == nullptr || services->empty()) {
      std::string text;
      if (countOf(root_, "routes") == 0) {
        text += "[[routes]]\nname = \"default\"\nservice = \"upstream\"\n\n";
      }
      text += "[services.upstream]\nactive = \"main\"\npools.main.endpoints = " + endpoints + "\n";
      toml::table doc;
      if (!parse(o, text, doc)) return;
      if (doc.get("routes") != nullptr) put(root_, "routes", *doc.get("routes"));
      put(root_, "services", *doc.get("services"));
      return;
    }
    if (services->size() != 1 || !services->begin()->second.is_table()) {
      return refuse(o, "the config has " + std::to_string(services->size()) +
                           " services; set their endpoints in the file (this sets the "
                           "only pool of the only service)");
    }
    toml::table& service = *services->begin()->second.as_table();
    toml::node* pools = service.get("pools");
    if (pools == nullptr || !pools->is_table() || pools->as_table()->size() != 1 ||
        !pools->as_table()->begin()->second.is_table()) {
      return refuse(o, "service " + detail::quoted(services->begin()->first.str()) +
                           " does not have exactly one pool; set its endpoints in the file");
    }
    set(*pools->as_table()->begin()->second.as_table(), "endpoints", o, endpoints);
  }

  detail::Diagnostics& diag_;
  toml::table& root_;
};

}  // namespace

const std::vector<OverrideKey>& overrideKeys() {
  static const std::vector<OverrideKey> kKeys = {
      {"listen", "--listen", "GATEWAY_LISTEN"},
      {"upstream", "--upstream", "GATEWAY_UPSTREAM"},
      {"workers", "--workers", "GATEWAY_WORKERS"},
      {"admin", "--admin", "GATEWAY_ADMIN"},
      {"admin_token", "", "GATEWAY_ADMIN_TOKEN"},
      {"admin_token_file", "", "GATEWAY_ADMIN_TOKEN_FILE"},
      {"log_level", "--log-level", "GATEWAY_LOG_LEVEL"},
      {"shutdown_delay", "--shutdown-delay", "GATEWAY_SHUTDOWN_DELAY"},
      {"drain_timeout", "--drain-timeout", "GATEWAY_DRAIN_TIMEOUT"},
      {"access_log", "--access-log", "GATEWAY_ACCESS_LOG"},
      {"access_log_format", "--access-log-format", "GATEWAY_ACCESS_LOG_FORMAT"},
  };
  return kKeys;
}

Overrides withEnvironment(Overrides flags, const std::map<std::string, std::string>& env) {
  for (const OverrideKey& k : overrideKeys()) {
    auto it = env.find(std::string(k.env));
    if (it == env.end()) continue;
    bool flagged = false;
    for (const Override& f : flags) flagged = flagged || f.key == k.key;
    if (!flagged) flags.push_back(Override{std::string(k.key), it->second, std::string(k.env)});
  }
  return flags;
}

LoadResult loadQuickConfig(const Overrides& overrides) {
  // No admin listener unless asked for: several sidecars on one host must not collide.
  return loadConfigString("[admin]\nlisten = \"\"\n", "<flags>", overrides);
}

namespace detail {

void applyOverrides(Diagnostics& diag, const Overrides& overrides, toml::table& root) {
  // In overrideKeys() order, whatever order they were given in.
  Applier applier(diag, root);
  for (const OverrideKey& k : overrideKeys()) {
    for (const Override& o : overrides) {
      if (o.key == k.key) applier.apply(o);
    }
  }
  for (const Override& o : overrides) {
    bool known = false;
    for (const OverrideKey& k : overrideKeys()) known = known || o.key == k.key;
    if (!known) applier.apply(o);  // reports it
  }
}

}  // namespace detail
}  // namespace gw::config
