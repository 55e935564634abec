// TOML -> Snapshot: parse, read every section, check references, build the router.
#include "gateway/config/loader.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "gateway/config/sections.h"

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

LoadResult loadConfigString(std::string_view toml_text, const std::string& source_name) {
  detail::Diagnostics diag(source_name);
  toml::parse_result parsed = toml::parse(toml_text, std::string_view(source_name));
  if (!parsed) {
    diag.error(parsed.error().source(), std::string(parsed.error().description()));
    return failed(diag);
  }
  detail::TableReader root(diag, parsed.table(), detail::kTopLevel, detail::topLevelKeys());
  auto snapshot = std::make_shared<Snapshot>();
  snapshot->source = source_name;
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
  LoadResult result;
  result.snapshot = std::move(snapshot);
  return result;
}

LoadResult loadConfigFile(const std::string& path) {
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
  return loadConfigString(text, path);
}

}  // namespace gw::config
