#include "gateway/filter/config_table.h"

#include <algorithm>
#include <cstdio>
#include <optional>

namespace gw::filter {
namespace {

const char* typeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    default:
      return "a date or time";
  }
}

bool parseNumberWithUnit(std::string_view text, uint64_t& number, std::string_view& unit) {
  size_t i = 0;
  number = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (number > (UINT64_MAX - 9) / 10) return false;
    number = number * 10 + static_cast<uint64_t>(text[i] - '0');
    ++i;
  }
  if (i == 0) return false;
  unit = text.substr(i);
  return true;
}

}  // namespace

std::string quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(u));
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

ConfigTable::ConfigTable(ConfigErrors& errors, const toml::table& table, std::string_view type,
                         std::vector<std::string_view> known_keys)
    : sink_(errors), table_(table), type_(type) {
  for (auto&& [key, value] : table) {
    std::string_view name = key.str();
    if (name == "type") continue;
    if (std::find(known_keys.begin(), known_keys.end(), name) != known_keys.end()) continue;
    std::string reason = "unknown key " + quote(name);
    if (!known_keys.empty()) {
      reason += " (known keys:";
      for (std::string_view k : known_keys) reason += " " + std::string(k);
      reason += ")";
    } else {
      reason += " (this filter has no settings)";
    }
    error(key.source(), reason);
  }
}

void ConfigTable::error(const toml::source_region& at, std::string_view reason) {
  ++errors_count_;
  sink_.error(at, "filter " + quote(type_) + ": " + std::string(reason));
}

void ConfigTable::error(const toml::node& at, std::string_view reason) {
  error(at.source(), reason);
}

std::string ConfigTable::resolvePath(const std::string& path) const {
  if (path.empty() || path.front() == '/') return path;
  const auto& file = table_.source().path;
  if (file == nullptr) return path;
  size_t slash = file->rfind('/');
  if (slash == std::string::npos) return path;
  return file->substr(0, slash + 1) + path;
}

void ConfigTable::errorHere(std::string_view reason) { error(table_.source(), reason); }

bool ConfigTable::getString(std::string_view key, std::string& out) {
  const toml::node* node = find(key);
  if (node == nullptr) return false;
  if (const auto* s = node->as_string()) {
    out = s->get();
    return true;
  }
  error(*node, quote(key) + " must be a string, not " + typeName(*node));
  return false;
}

bool ConfigTable::getBool(std::string_view key, bool& out) {
  const toml::node* node = find(key);
  if (node == nullptr) return false;
  if (const auto* b = node->as_boolean()) {
    out = b->get();
    return true;
  }
  error(*node, quote(key) + " must be true or false, not " + typeName(*node));
  return false;
}

bool ConfigTable::getInteger(std::string_view key, int64_t min, int64_t max, int64_t& out) {
  const toml::node* node = find(key);
  if (node == nullptr) return false;
  const auto* i = node->as_integer();
  if (i == nullptr) {
    error(*node, quote(key) + " must be an integer, not " + typeName(*node));
    return false;
  }
  if (i->get() < min || i->get() > max) {
    error(*node, quote(key) + " must be between " + std::to_string(min) + " and " +
                     std::to_string(max) + " (got " + std::to_string(i->get()) + ")");
    return false;
  }
  out = i->get();
  return true;
}

bool ConfigTable::getNumber(std::string_view key, double min, double max, double& out) {
  const toml::node* node = find(key);
  if (node == nullptr) return false;
  std::optional<double> value;
  if (const auto* f = node->as_floating_point()) value = f->get();
  if (const auto* i = node->as_integer()) value = static_cast<double>(i->get());
  if (!value) {
    error(*node, quote(key) + " must be a number, not " + typeName(*node));
    return false;
  }
  if (!(*value >= min && *value <= max)) {  // also refuses nan
    char text[96];
    std::snprintf(text, sizeof text, " must be between %g and %g (got %g)", min, max, *value);
    error(*node, quote(key) + text);
    return false;
  }
  out = *value;
  return true;
}

bool ConfigTable::getStringArray(std::string_view key,
                                 std::vector<std::pair<std::string, const toml::node*>>& out) {
  const toml::node* node = find(key);
  if (node == nullptr) return false;
  const toml::array* array = node->as_array();
  if (array == nullptr) {
    error(*node, quote(key) + " must be an array of strings, not " + typeName(*node));
    return false;
  }
  bool ok = true;
  out.clear();
  for (const toml::node& element : *array) {
    if (const auto* s = element.as_string()) {
      out.emplace_back(s->get(), &element);
    } else {
      error(element, quote(key) + ": each element must be a string, not " + typeName(element));
      ok = false;
    }
  }
  return ok;
}

bool ConfigTable::getStringTable(std::string_view key, std::vector<Entry>& out) {
  const toml::node* node = find(key);
  if (node == nullptr) return false;
  const toml::table* table = node->as_table();
  if (table == nullptr) {
    error(*node,
          quote(key) + " must be a table like { \"X-Name\" = \"value\" }, not " + typeName(*node));
    return false;
  }
  bool ok = true;
  out.clear();
  for (auto&& [k, v] : *table) {
    if (const auto* s = v.as_string()) {
      out.push_back({std::string(k.str()), s->get(), &v});
    } else {
      error(v, quote(key) + ": the value of " + quote(k.str()) + " must be a string, not " +
                   typeName(v));
      ok = false;
    }
  }
  // toml++ keeps keys sorted; the file's order is what people expect to see applied.
  std::stable_sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
    const auto& x = a.node->source().begin;
    const auto& y = b.node->source().begin;
    return x.line != y.line ? x.line < y.line : x.column < y.column;
  });
  return ok;
}

bool ConfigTable::getDuration(std::string_view key, uint64_t min_ms, uint64_t max_ms,
                              uint64_t& out_ms) {
  const toml::node* node = find(key);
  if (node == nullptr) return false;
  const auto* s = node->as_string();
  uint64_t n = 0;
  std::string_view unit;
  uint64_t ms = 0;
  bool ok = s != nullptr && parseNumberWithUnit(s->get(), n, unit);
  if (ok) {
    uint64_t scale = unit == "ms"  ? 1
                     : unit == "s" ? 1000
                     : unit == "m" ? 60'000
                     : unit == "h" ? 3'600'000
                                   : 0;
    ok = scale != 0 && n <= UINT64_MAX / scale;
    if (ok) ms = n * scale;
  }
  if (!ok) {
    error(*node, quote(key) + " must be a duration with a unit, like \"250ms\", \"5s\", \"2m\"");
    return false;
  }
  if (ms < min_ms || ms > max_ms) {
    error(*node, quote(key) + " is out of range (" + std::to_string(min_ms) + "ms to " +
                     std::to_string(max_ms) + "ms)");
    return false;
  }
  out_ms = ms;
  return true;
}

bool ConfigTable::getSize(std::string_view key, uint64_t min, uint64_t max, uint64_t& out) {
  const toml::node* node = find(key);
  if (node == nullptr) return false;
  uint64_t bytes = 0;
  bool ok = false;
  if (const auto* i = node->as_integer()) {
    ok = i->get() >= 0;
    bytes = static_cast<uint64_t>(i->get());
  } else if (const auto* s = node->as_string()) {
    uint64_t n = 0;
    std::string_view unit;
    if (parseNumberWithUnit(s->get(), n, unit)) {
      static const std::pair<std::string_view, uint64_t> kUnits[] = {
          {"B", 1},     {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30},
          {"KB", 1000}, {"MB", 1000000},     {"GB", 1000000000}};
      for (const auto& [name, scale] : kUnits) {
        if (unit == name && n <= UINT64_MAX / scale) {
          bytes = n * scale;
          ok = true;
        }
      }
    }
  }
  if (!ok) {
    error(*node, quote(key) + " must be a size like \"16KiB\", \"10MiB\" or a number of bytes");
    return false;
  }
  if (bytes < min || bytes > max) {
    error(*node, quote(key) + " is out of range (" + std::to_string(min) + " to " +
                     std::to_string(max) + " bytes)");
    return false;
  }
  out = bytes;
  return true;
}

}  // namespace gw::filter
