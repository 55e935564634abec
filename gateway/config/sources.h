#pragma once
// Private to gateway/config: the files a config consists of. The main file may name
// others with `include = ["routes/*.toml"]` (paths relative to the main file, glob
// patterns expanded in sorted order). Everything is merged into one TOML table whose
// nodes keep their own file and line, so an error in an included file names that file.
//
// Merge rules: [[listeners]] and [[routes]] from included files are appended after the
// main file's, in include order; [services.NAME] tables are added (a name defined twice
// is an error naming both places); any other key may be set in one file only.

#include <toml++/toml.h>

#include <string>
#include <string_view>
#include <vector>

#include "gateway/config/reader.h"

namespace gw::config {

// The merged TOML of a snapshot, kept for GET /config and for diffs.
struct ConfigDocument {
  toml::table table;
};

}  // namespace gw::config

namespace gw::config::detail {

struct Sources {
  toml::table merged;
  std::vector<std::string> files;       // the main file first, then the included ones
  std::string fingerprint;              // every file's name and bytes: changes when any does
  std::vector<std::string> watch_dirs;  // where a change can add, edit or remove a file
};

// Parses `main_text` (the contents of `main_path`) and every file it includes. Errors
// go to `diag`; returns false when a file could not be read or parsed.
bool readSources(Diagnostics& diag, std::string_view main_text, const std::string& main_path,
                 Sources& out);

}  // namespace gw::config::detail
