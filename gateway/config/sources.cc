#include "gateway/config/sources.h"

#include <glob.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>

namespace gw::config::detail {
namespace {

bool readWholeFile(const std::string& path, std::string& out, std::string& error) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    error = std::strerror(errno);
    return false;
  }
  char buffer[16 * 1024];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) out.append(buffer, n);
  bool ok = !std::ferror(file);
  std::fclose(file);
  if (!ok) error = "read error";
  return ok;
}

// "conf/main.toml" -> "conf".
std::string directoryOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string placeOf(const toml::node& node) {
  const toml::source_region& at = node.source();
  std::string out = at.path ? *at.path : std::string("?");
  if (at.begin.line > 0) out += ":" + std::to_string(at.begin.line);
  return out;
}

void appendFingerprint(std::string& fingerprint, const std::string& path, std::string_view text) {
  fingerprint += path;
  fingerprint += '\0';
  fingerprint += std::to_string(text.size());
  fingerprint += '\0';
  fingerprint.append(text.data(), text.size());
}

// Moves every key of `extra` into `root` by the merge rules above.
void mergeInto(Diagnostics& diag, toml::table& root, toml::table& extra) {
  for (auto&& [key, node] : extra) {
    std::string_view name = key.str();
    toml::node* existing = root.get(name);
    if (existing == nullptr) {
      // A named copy of the key: clang before 16 cannot capture a structured binding
      // in a lambda (the fuzzers are built with clang 14, see tests/fuzz/build.sh).
      const toml::key& key_ref = key;
      node.visit([&](auto&& value) { root.insert(key_ref, std::move(value)); });
      continue;
    }
    if ((name == "listeners" || name == "routes") && existing->is_array() && node.is_array()) {
      toml::array& into = *existing->as_array();
      for (toml::node& element : *node.as_array()) {
        element.visit([&](auto&& value) { into.push_back(std::move(value)); });
      }
      continue;
    }
    if (name == "services" && existing->is_table() && node.is_table()) {
      toml::table& into = *existing->as_table();
      for (auto&& [service, table] : *node.as_table()) {
        if (const toml::node* previous = into.get(service.str())) {
          diag.error(table, "service " + quoted(service.str()) + " is already defined at " +
                                placeOf(*previous));
          continue;
        }
        const toml::key& service_ref = service;  // see key_ref above
        table.visit([&](auto&& value) { into.insert(service_ref, std::move(value)); });
      }
      continue;
    }
    diag.error(node, quoted(name) + " is already set at " + placeOf(*existing) +
                         " (a setting belongs in one file; only [[listeners]], [[routes]] "
                         "and [services.NAME] may be spread over several)");
  }
}

// TOML 1.0 allows no control character but tab, LF and CR anywhere (not even in
// comments or strings); such text is refused here first, with its position, whatever
// the context (found by the config fuzzer: in a table header toml++ 3.3 tripped a debug
// assertion instead; see third_party/tomlplusplus.BUILD for that).
bool parseToml(Diagnostics& diag, std::string_view text, const std::string& path,
               toml::parse_result& out) {
  uint32_t line = 1;
  uint32_t column = 1;
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
      toml::source_region where;
      where.begin = {line, column};
      where.end = where.begin;
      where.path = std::make_shared<const std::string>(path);
      char code[8];
      std::snprintf(code, sizeof code, "U+%04X", c);
      diag.error(where, std::string("control character ") + code +
                            " is not allowed in TOML (only tab, LF and CR are)");
      return false;
    }
    if (c == '\n') {
      ++line;
      column = 1;
    } else if ((c & 0xc0) != 0x80) {
      ++column;  // columns count characters, as toml++ does: skip UTF-8 continuations
    }
  }
  out = toml::parse(text, std::string_view(path));
  if (!out) {
    diag.error(out.error().source(), std::string(out.error().description()));
    return false;
  }
  return true;
}

void addWatchDir(Sources& out, std::string dir) {
  for (const std::string& d : out.watch_dirs) {
    if (d == dir) return;
  }
  out.watch_dirs.push_back(std::move(dir));
}

}  // namespace

bool readSources(Diagnostics& diag, std::string_view main_text, const std::string& main_path,
                 Sources& out) {
  out.files.push_back(main_path);
  addWatchDir(out, directoryOf(main_path));
  appendFingerprint(out.fingerprint, main_path, main_text);
  toml::parse_result parsed;
  if (!parseToml(diag, main_text, main_path, parsed)) return false;
  out.merged = std::move(parsed.table());
  const toml::node* include = out.merged.get("include");
  if (include == nullptr) return true;
  const toml::array* patterns = include->as_array();
  if (patterns == nullptr) {
    diag.error(*include, "include must be an array of file names or glob patterns");
    return false;
  }

  bool ok = true;
  std::vector<std::pair<std::string, const toml::node*>> files;  // in include order
  for (const toml::node& element : *patterns) {
    const std::string* pattern = element.is_string() ? &element.as_string()->get() : nullptr;
    if (pattern == nullptr || pattern->empty()) {
      diag.error(element, "include must be an array of file names or glob patterns");
      ok = false;
      continue;
    }
    std::string full = *pattern;
    if (full[0] != '/' && main_path.find('/') != std::string::npos) {
      full = directoryOf(main_path) + "/" + full;
    }
    bool wildcard = full.find_first_of("*?[") != std::string::npos;
    // A file that appears later in a pattern's directory must trigger a reload too.
    std::string dir = directoryOf(full);
    if (dir.find_first_of("*?[") == std::string::npos) addWatchDir(out, dir);
    glob_t found{};
    int rc = glob(full.c_str(), 0, nullptr, &found);
    if (rc == 0) {
      for (size_t i = 0; i < found.gl_pathc; ++i) files.emplace_back(found.gl_pathv[i], &element);
    } else if (rc != GLOB_NOMATCH || !wildcard) {
      // A pattern that matches nothing is fine (an empty routes.d/); a plain name must exist.
      diag.error(element, "included file " + quoted(full) + " does not exist");
      ok = false;
    }
    globfree(&found);
  }

  for (const auto& [path, named_at] : files) {
    bool seen = false;
    for (const std::string& f : out.files) seen = seen || f == path;
    if (seen) continue;  // the main file, or matched by two patterns: read once
    std::string text, error;
    if (!readWholeFile(path, text, error)) {
      diag.error(*named_at, "cannot read included file " + quoted(path) + ": " + error);
      ok = false;
      continue;
    }
    out.files.push_back(path);
    addWatchDir(out, directoryOf(path));
    appendFingerprint(out.fingerprint, path, text);
    toml::parse_result sub;
    if (!parseToml(diag, text, path, sub)) {
      ok = false;
      continue;
    }
    toml::table& table = sub.table();
    if (const toml::node* nested = table.get("include")) {
      diag.error(*nested, "include is allowed in the main config file only");
      ok = false;
      table.erase("include");
    }
    mergeInto(diag, out.merged, table);
  }
  return ok;
}

}  // namespace gw::config::detail
