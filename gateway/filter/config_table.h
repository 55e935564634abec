#pragma once
// How a filter reads its TOML table at config load: typed getters that report errors at
// the value's file:line:col through the loader's error sink, and refuse unknown keys.
// Runs on the control thread; never on the request path.

#include <toml++/toml.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gw::filter {

// Implemented by the config loader: records "file:line:col: reason".
class ConfigErrors {
 public:
  virtual ~ConfigErrors() = default;
  virtual void error(const toml::source_region& where, std::string reason) = 0;
};

class ConfigTable {
 public:
  // `type` is the filter's name, used in messages ("filter \"cors\": ...").
  // `known_keys` excludes "type", which is always allowed.
  ConfigTable(ConfigErrors& errors, const toml::table& table, std::string_view type,
              std::vector<std::string_view> known_keys);

  const toml::table& table() const { return table_; }
  const toml::node* find(std::string_view key) const { return table_.get(key); }
  // Reports an error at `at` prefixed with the filter's name.
  void error(const toml::node& at, std::string_view reason);
  void error(const toml::source_region& at, std::string_view reason);
  // Reports an error at the whole table (for a missing key).
  void errorHere(std::string_view reason);
  size_t errorCount() const { return errors_count_; }

  // Where this filter sits: "route \"api\" #2", or "all routes #0" for the chain for all
  // routes. Stable across reloads while the filter stays in place, so filters that keep
  // runtime state (rate-limit buckets) can find their state again after a reload.
  const std::string& scope() const { return scope_; }
  // `path` as written, or relative to the directory of the file the table is in.
  std::string resolvePath(const std::string& path) const;
  void setScope(std::string scope) { scope_ = std::move(scope); }

  // Each getter leaves `out` alone and returns false when the key is absent; when it is
  // present with the wrong type or out of range it reports and returns false.
  bool getString(std::string_view key, std::string& out);
  bool getBool(std::string_view key, bool& out);
  bool getInteger(std::string_view key, int64_t min, int64_t max, int64_t& out);
  // An integer or a float (0, 0.25, 1), within [min, max].
  bool getNumber(std::string_view key, double min, double max, double& out);
  bool getStringArray(std::string_view key,
                      std::vector<std::pair<std::string, const toml::node*>>& out);
  // A table of string values, e.g. { "X-Env" = "prod" }, in the file's key order.
  struct Entry {
    std::string key;
    std::string value;
    const toml::node* node;
  };
  bool getStringTable(std::string_view key, std::vector<Entry>& out);
  // Durations with a unit ("250ms", "5s", "2m", "1h").
  bool getDuration(std::string_view key, uint64_t min_ms, uint64_t max_ms, uint64_t& out_ms);
  // Sizes with a unit ("512B", "16KiB", "10MiB"; KB/MB = 1000) or an integer of bytes.
  bool getSize(std::string_view key, uint64_t min, uint64_t max, uint64_t& out);

 private:
  ConfigErrors& sink_;
  const toml::table& table_;
  std::string type_;
  std::string scope_;
  size_t errors_count_ = 0;
};

// "\"text\"" with control bytes escaped, for messages.
std::string quote(std::string_view text);

}  // namespace gw::filter
