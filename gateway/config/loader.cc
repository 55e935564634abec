// TOML -> Snapshot: parse, read every section, check references, build the router.
#include "gateway/config/loader.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "gateway/config/sections.h"
#include "gateway/config/sources.h"

namespace gw::config {

std::string ConfigError::toString() const {
  std::string out = where.file;
  if (where.line > 0) {
    out += ":" + std::to_string(where.line);
    if (where.column > 0) out += ":" + std::to_string(where.column);
  }
  out += ": ";
  out += reason;
  return out;
}

namespace {

// FNV-1a, 64 bits, as 16 hex digits: a version label, not a security measure.
std::string fingerprintHash(std::string_view bytes) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

LoadResult failed(detail::Diagnostics& diag) {
  LoadResult result;
  result.errors = diag.take();
  return result;
}

void checkRouteReferences(detail::Diagnostics& diag, const std::vector<detail::ParsedRoute>& routes,
                          const std::map<std::string, Service>& services) {
  std::vector<std::string> names;
  for (const auto& [name, service] : services) names.push_back(name);
  for (const detail::ParsedRoute& parsed : routes) {
    const route::Route& r = parsed.route;
    if (services.count(r.service) != 0) continue;
    std::string reason = "route " + detail::quoted(r.name) + ": service " +
                         detail::quoted(r.service) + " does not exist";
    reason += names.empty() ? " (there is no [services.NAME] table)"
                            : " (services: " + detail::joined(names) + ")";
    diag.error(parsed.where, std::move(reason));
  }
}

}  // namespace

LoadResult loadConfigString(std::string_view toml_text, const std::string& source_name,
                            const Overrides& overrides) {
  detail::Diagnostics diag(source_name);
  detail::Sources sources;
  if (!detail::readSources(diag, toml_text, source_name, sources)) return failed(diag);
  detail::applyOverrides(diag, overrides, sources.merged);
  auto document = std::make_shared<ConfigDocument>();
  document->table = std::move(sources.merged);
  detail::TableReader root(diag, document->table, detail::kTopLevel, detail::topLevelKeys());
  auto snapshot = std::make_shared<Snapshot>();
  snapshot->source = source_name;
  snapshot->files = std::move(sources.files);
  snapshot->watch_dirs = std::move(sources.watch_dirs);
  snapshot->hash = fingerprintHash(sources.fingerprint);
  detail::readGlobals(root, *snapshot);
  detail::readListeners(root, *snapshot);
  std::vector<detail::ParsedRoute> routes = detail::readRoutes(root);
  detail::readServices(root, snapshot->services);
  checkRouteReferences(diag, routes, snapshot->services);
  detail::readFilterChains(root, routes, *snapshot);
  if (diag.count() != 0) return failed(diag);

  std::vector<route::Route> table;
  table.reserve(routes.size());
  for (detail::ParsedRoute& r : routes) table.push_back(std::move(r.route));
  snapshot->router = std::make_shared<const route::Router>(std::move(table));
  snapshot->document = std::move(document);
  LoadResult result;
  result.snapshot = std::move(snapshot);
  return result;
}

std::string readConfigFingerprint(const std::string& path) {
  std::string text;
  if (std::FILE* file = std::fopen(path.c_str(), "rb")) {
    char buffer[16 * 1024];
    size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, n);
    std::fclose(file);
  } else {
    return "";
  }
  detail::Diagnostics ignored(path);
  detail::Sources sources;
  detail::readSources(ignored, text, path, sources);
  return sources.fingerprint;
}

LoadResult loadConfigFile(const std::string& path, const Overrides& overrides) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  std::string text;
  int error = 0;
  if (file == nullptr) {
    error = errno;
  } else {
    char buffer[16 * 1024];
    size_t n = 0;
    errno = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, n);
    if (std::ferror(file)) error = errno != 0 ? errno : EIO;
    std::fclose(file);
  }
  if (error != 0) {
    LoadResult result;
    ConfigError e;
    e.where.file = path;
    e.reason = std::string("cannot read the config file: ") + std::strerror(error);
    result.errors.push_back(std::move(e));
    return result;
  }
  return loadConfigString(text, path, overrides);
}

}  // namespace gw::config
