#include "gateway/config/reader.h"

#include <algorithm>
#include <cstdio>
#include <limits>

namespace gw::config::detail {

void Diagnostics::error(const toml::source_region& where, std::string reason) {
  ConfigError e;
  // Nodes from an included file carry that file's path.
  e.where.file = where.path ? *where.path : file_;
  e.where.line = static_cast<int>(where.begin.line);
  e.where.column = static_cast<int>(where.begin.column);
  for (const std::string& origin : origins_) {
    if (e.where.file == origin) e.where.line = e.where.column = 0;
  }
  e.reason = std::move(reason);
  errors_.push_back(std::move(e));
}

void Diagnostics::errorAtFile(std::string reason) {
  ConfigError e;
  e.where.file = file_;
  e.reason = std::move(reason);
  errors_.push_back(std::move(e));
}

std::vector<ConfigError> Diagnostics::take() {
  auto order = [](const ConfigError& e) {
    // Errors without a position go last; the rest read top to bottom.
    int line = e.where.line > 0 ? e.where.line : std::numeric_limits<int>::max();
    return std::make_pair(line, e.where.column);
  };
  std::stable_sort(errors_.begin(), errors_.end(),
                   [&](const ConfigError& a, const ConfigError& b) { return order(a) < order(b); });
  return std::move(errors_);
}

const char kTopLevel[] = "at the top level";

const std::vector<std::string_view>& topLevelKeys() {
  static const std::vector<std::string_view> kKeys = {
      "include", "workers",    "admin",     "log",    "access_log", "metrics", "tracing",
      "limits",  "forwarding", "listeners", "routes", "services",   "filters"};
  return kKeys;
}

std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x",
                    static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

size_t editDistance(std::string_view a, std::string_view b) {
  // d[i][j]: distance between the first i chars of a and the first j chars of b.
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

std::optional<std::string_view> closestMatch(std::string_view word,
                                             const std::vector<std::string_view>& candidates) {
  auto lower = [](std::string_view s) {
    std::string out(s);
    for (char& c : out) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    return out;
  };
  std::string w = lower(word);
  std::optional<std::string_view> best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (std::string_view candidate : candidates) {
    size_t d = editDistance(w, lower(candidate));
    // Close enough to be a typo: at most two edits, and not most of the word.
    bool plausible = d <= 2 && 2 * d <= std::max(w.size(), candidate.size());
    if (plausible && d < best_distance) {
      best = candidate;
      best_distance = d;
    }
  }
  return best;
}

std::string formatSize(uint64_t bytes) {
  struct Unit {
    uint64_t factor;
    const char* name;
  };
  static const Unit kUnits[] = {{1ull << 30, "GiB"},   {1ull << 20, "MiB"}, {1ull << 10, "KiB"},
                                {1'000'000'000, "GB"}, {1'000'000, "MB"},   {1'000, "KB"}};
  if (bytes != 0) {
    for (const Unit& unit : kUnits) {
      if (bytes % unit.factor == 0) return std::to_string(bytes / unit.factor) + unit.name;
    }
  }
  return std::to_string(bytes) + "B";
}

TableReader::TableReader(Diagnostics& diag, const toml::table& table, std::string section,
                         std::vector<std::string_view> known_keys)
    : diag_(diag), table_(table) {
  for (auto&& [key, value] : table) {
    (void)value;
    std::string_view name = key.str();
    if (std::find(known_keys.begin(), known_keys.end(), name) != known_keys.end()) continue;
    std::string reason = "unknown key " + quoted(name) + " " + section;
    const auto& top = topLevelKeys();
    if (auto suggestion = closestMatch(name, known_keys)) {
      reason += " (did you mean " + quoted(*suggestion) + "?)";
    } else if (section != kTopLevel && std::find(top.begin(), top.end(), name) != top.end()) {
      // TOML puts every key after a [header] into that table.
      reason += " (top-level keys must come before the first [table] or [[array]] header)";
    }
    diag.error(key.source(), std::move(reason));
  }
}

bool TableReader::getString(std::string_view key, std::string& out) {
  const toml::node* node = find(key);
  if (node == nullptr) return false;
  if (const auto* s = node->as_string()) {
    out = s->get();
    return true;
  }
  diag_.error(*node, quoted(key) + " must be a string");
  return false;
}

bool TableReader::getBool(std::string_view key, bool& out) {
  const toml::node* node = find(key);
  if (node == nullptr) return false;
  if (const auto* b = node->as_boolean()) {
    out = b->get();
    return true;
  }
  diag_.error(*node, quoted(key) + " must be true or false");
  return false;
}

bool TableReader::getInteger(std::string_view key, int64_t min, int64_t max, int64_t& out) {
  const toml::node* node = find(key);
  if (node == nullptr) return false;
  const auto* i = node->as_integer();
  if (i == nullptr) {
    diag_.error(*node, quoted(key) + " must be an integer");
    return false;
  }
  int64_t value = i->get();
  if (value < min || value > max) {
    diag_.error(*node, quoted(key) + " must be between " + std::to_string(min) + " and " +
                           std::to_string(max) + " (got " + std::to_string(value) + ")");
    return false;
  }
  out = value;
  return true;
}

bool TableReader::getUint32(std::string_view key, uint32_t min, uint32_t max, uint32_t& out) {
  int64_t value = 0;
  if (!getInteger(key, min, max, value)) return false;
  out = static_cast<uint32_t>(value);
  return true;
}

bool TableReader::getDuration(std::string_view key, uint64_t min_ms, uint64_t& out_ms) {
  const toml::node* node = find(key);
  if (node == nullptr) return false;
  if (node->is_integer() || node->is_floating_point()) {
    diag_.error(*node, quoted(key) + ": durations need a unit, e.g. \"5s\"");
    return false;
  }
  const auto* s = node->as_string();
  if (s == nullptr) {
    diag_.error(*node, quoted(key) + " must be a duration, e.g. \"5s\"");
    return false;
  }
  uint64_t value = 0;
  if (!parseDuration(s->get(), value)) {
    diag_.error(*node, quoted(key) + ": invalid duration " + quoted(s->get()) +
                           " (use a whole number and ms, s, m or h, e.g. \"250ms\", \"5s\")");
    return false;
  }
  if (value < min_ms) {
    diag_.error(*node, quoted(key) + " must be at least " + std::to_string(min_ms) + "ms");
    return false;
  }
  out_ms = value;
  return true;
}

bool TableReader::getSize(std::string_view key, uint64_t min, uint64_t max, uint64_t& out) {
  const toml::node* node = find(key);
  if (node == nullptr) return false;
  uint64_t value = 0;
  if (const auto* i = node->as_integer()) {
    if (i->get() < 0) {
      diag_.error(*node, quoted(key) + " must not be negative");
      return false;
    }
    value = static_cast<uint64_t>(i->get());
  } else if (const auto* s = node->as_string()) {
    if (!parseSize(s->get(), value)) {
      diag_.error(*node, quoted(key) + ": invalid size " + quoted(s->get()) +
                             " (use a whole number and B, KB, MB, GB, KiB, MiB or GiB, e.g. "
                             "\"16KiB\")");
      return false;
    }
  } else {
    diag_.error(*node, quoted(key) + " must be a size, e.g. \"16KiB\", or a number of bytes");
    return false;
  }
  if (value < min || value > max) {
    diag_.error(*node, quoted(key) + " must be between " + formatSize(min) + " and " +
                           formatSize(max) + " (got " + formatSize(value) + ")");
    return false;
  }
  out = value;
  return true;
}

bool TableReader::getStringArray(std::string_view key,
                                 std::vector<std::pair<std::string, const toml::node*>>& out) {
  const toml::node* node = find(key);
  if (node == nullptr) return false;
  const auto* array = node->as_array();
  if (array == nullptr) {
    diag_.error(*node, quoted(key) + " must be an array of strings");
    return false;
  }
  bool ok = true;
  std::vector<std::pair<std::string, const toml::node*>> values;
  for (const toml::node& element : *array) {
    if (const auto* s = element.as_string()) {
      values.emplace_back(s->get(), &element);
    } else {
      diag_.error(element, quoted(key) + " must be an array of strings");
      ok = false;
    }
  }
  if (!ok) return false;
  out = std::move(values);
  return true;
}

const toml::table* TableReader::getTable(std::string_view key) {
  const toml::node* node = find(key);
  if (node == nullptr) return nullptr;
  if (const auto* t = node->as_table()) return t;
  diag_.error(*node, quoted(key) + " must be a table");
  return nullptr;
}

}  // namespace gw::config::detail
