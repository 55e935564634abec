#pragma once
// Private to gateway/config: the error collector and the checked table reader every
// section parser uses, so that unknown keys, type errors and range errors read the
// same everywhere. Not part of the library's interface (see loader.h).

#include <toml++/toml.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/config/loader.h"

namespace gw::config::detail {

// Collects every error of one load, each with the file and the TOML position.
class Diagnostics {
 public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}

  void error(const toml::source_region& where, std::string reason);
  void error(const toml::node& at, std::string reason) { error(at.source(), std::move(reason)); }
  // For errors about something missing from the whole file (no line to point at).
  void errorAtFile(std::string reason);
  // Nodes whose source path is `origin` (a flag or an environment variable, see
  // overrides.cc) have no meaningful line: their errors read "origin: reason".
  void addOrigin(std::string origin) { origins_.push_back(std::move(origin)); }

  size_t count() const { return errors_.size(); }
  const std::string& file() const { return file_; }
  // The errors, sorted by position (errors without a line last).
  std::vector<ConfigError> take();

 private:
  std::string file_;
  std::vector<ConfigError> errors_;
  std::vector<std::string> origins_;
};

// The keys allowed at the top level of the file.
const std::vector<std::string_view>& topLevelKeys();
extern const char kTopLevel[];  // the section name of the top level, "at the top level"

// "\"text\"": how names and values appear inside error messages.
std::string quoted(std::string_view text);
// "blue, green".
std::string joined(const std::vector<std::string>& names);
// Optimal string alignment distance (a swap of two neighbours counts as one edit).
size_t editDistance(std::string_view a, std::string_view b);
// The candidate closest to `word`, if it is close enough to be a plausible typo.
std::optional<std::string_view> closestMatch(std::string_view word,
                                             const std::vector<std::string_view>& candidates);
// 16384 -> "16KiB", 1000 -> "1KB", 1500 -> "1500B".
std::string formatSize(uint64_t bytes);

// Reads one TOML table whose keys are fixed. Unknown keys are reported when the
// reader is made. Every getter leaves `out` alone and returns false when the key is
// absent; when it is present but has the wrong type or range, the getter reports
// an error at the value and returns false too. Returns true only when `out` was set.
class TableReader {
 public:
  // `section` ends the unknown-key message: "in [admin]", "at the top level".
  TableReader(Diagnostics& diag, const toml::table& table, std::string section,
              std::vector<std::string_view> known_keys);

  const toml::table& table() const { return table_; }
  Diagnostics& diag() { return diag_; }
  const toml::node* find(std::string_view key) const { return table_.get(key); }

  bool getString(std::string_view key, std::string& out);
  bool getBool(std::string_view key, bool& out);
  bool getInteger(std::string_view key, int64_t min, int64_t max, int64_t& out);
  bool getUint32(std::string_view key, uint32_t min, uint32_t max, uint32_t& out);
  // Durations are strings with a unit ("250ms", "5s", "2m", "1h"); a bare integer is
  // an error that says so.
  bool getDuration(std::string_view key, uint64_t min_ms, uint64_t& out_ms);
  // Sizes are strings with a unit ("16KiB") or integers of bytes.
  bool getSize(std::string_view key, uint64_t min, uint64_t max, uint64_t& out);
  // Each element with its node, for per-element error positions.
  bool getStringArray(std::string_view key,
                      std::vector<std::pair<std::string, const toml::node*>>& out);
  // The sub-table, or null (absent, or not a table: then an error is reported).
  const toml::table* getTable(std::string_view key);

 private:
  Diagnostics& diag_;
  const toml::table& table_;
};

}  // namespace gw::config::detail
